"""An S3 client for the S3 Glacier storage classes (``glacierd.s3.client``) and its
errors; it shares the Glacier client's signer, transport, retries and credentials."""
