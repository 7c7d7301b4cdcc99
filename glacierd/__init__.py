"""glacierd: a resumable Amazon Glacier backup daemon, and the client library it is built on."""

__version__ = "0.1.0"
