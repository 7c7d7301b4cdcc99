"""A Glacier client that talks the REST API directly and reports progress.

    from glacierd.glacier import GlacierClient
    client = GlacierClient("us-east-1")
    archive_id = client.multiupload_archive("photos", "2026.tar", progress=print)

This package knows nothing of glacierd's store or daemon.
"""

from .client import GlacierClient, JobOutput
from .credentials import resolve_credentials
from .errors import (
    AccessDeniedException,
    ChecksumMismatchError,
    CredentialsError,
    GlacierError,
    InsufficientCapacityException,
    InvalidInputError,
    InvalidParameterValueException,
    InvalidSignatureException,
    LimitExceededException,
    MissingParameterValueException,
    OutcomeUnknownError,
    PolicyEnforcedException,
    RequestTimeoutException,
    ResourceNotFoundException,
    ServerError,
    ServiceUnavailableException,
    ThrottlingException,
    TransportError,
    UnrecognizedClientException,
    UnverifiedOutputError,
)
from .retry import RetryPolicy
from .sigv4 import Credentials, SigV4Auth
from .treehash import TreeHasher, combine_hex, tree_hash, tree_hash_file

__all__ = [
    "AccessDeniedException",
    "ChecksumMismatchError",
    "Credentials",
    "CredentialsError",
    "GlacierClient",
    "GlacierError",
    "InsufficientCapacityException",
    "InvalidInputError",
    "InvalidParameterValueException",
    "InvalidSignatureException",
    "JobOutput",
    "LimitExceededException",
    "MissingParameterValueException",
    "OutcomeUnknownError",
    "PolicyEnforcedException",
    "RequestTimeoutException",
    "ResourceNotFoundException",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableException",
    "SigV4Auth",
    "ThrottlingException",
    "TransportError",
    "TreeHasher",
    "UnrecognizedClientException",
    "UnverifiedOutputError",
    "combine_hex",
    "resolve_credentials",
    "tree_hash",
    "tree_hash_file",
]
