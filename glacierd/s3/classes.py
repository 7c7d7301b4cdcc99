"""The S3 storage classes glacierd writes objects in (pure, imported by ``--help``)."""

S3_STORAGE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD_IA", "STANDARD")
"""``[s3] storage_class``, ``migrate --storage-class``; priced in ``glacierd.pricing``."""
