"""A Glacier client that talks the REST API directly and reports progress.

    from glacierd.glacier import GlacierClient
    client = GlacierClient("us-east-1")
    archive_id = client.multiupload_archive("photos", "2026.tar", progress=print)

This package knows nothing of glacierd's store or daemon. Its pure parts
(errors, tree hashes, the signer, limits, retry back-off) import without
``requests``; every name here is loaded on first use, so that glacierd's
commands that never talk to AWS (and the layers below them) pay for neither
an HTTP library nor the modules they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import SigV4Auth
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
    from .sigv4 import Credentials
    from .treehash import TreeHasher, combine_hex, tree_hash, tree_hash_file

_LAZY = {
    'AccessDeniedException': 'errors',
    'ChecksumMismatchError': 'errors',
    'CredentialsError': 'errors',
    'GlacierError': 'errors',
    'InsufficientCapacityException': 'errors',
    'InvalidInputError': 'errors',
    'InvalidParameterValueException': 'errors',
    'InvalidSignatureException': 'errors',
    'LimitExceededException': 'errors',
    'MissingParameterValueException': 'errors',
    'OutcomeUnknownError': 'errors',
    'PolicyEnforcedException': 'errors',
    'RequestTimeoutException': 'errors',
    'ResourceNotFoundException': 'errors',
    'ServerError': 'errors',
    'ServiceUnavailableException': 'errors',
    'ThrottlingException': 'errors',
    'TransportError': 'errors',
    'UnrecognizedClientException': 'errors',
    'UnverifiedOutputError': 'errors',
    'RetryPolicy': 'retry',
    'Credentials': 'sigv4',
    'TreeHasher': 'treehash',
    'combine_hex': 'treehash',
    'tree_hash': 'treehash',
    'tree_hash_file': 'treehash',
    'GlacierClient': 'client',
    'JobOutput': 'client',
    'SigV4Auth': 'auth',
    'resolve_credentials': 'credentials',
}
"""Every name, imported on first use: ``glacierd.glacier.limits`` (say) costs its
importer nothing more, and the client's ``requests`` only its users."""


def __getattr__(name: str) -> Any:
    """A name of the package, imported from its module on first use."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
