"""Moving a Glacier vault into an S3 bucket: ``names`` plans keys (pure),
``cost`` prices a plan (pure), ``mover`` does it, resumably."""
