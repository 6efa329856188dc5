"""What a failed AWS call's error code means, read the same way by every handler.

S3 answers a HEAD request with the bare HTTP status ("403", "404") instead of a code, and KMS
denials reach S3 callers as "KMS.AccessDeniedException"; the sets below include those forms.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "Forbidden",
        "AllAccessDisabled",
        "KMS.AccessDeniedException",
    }
)
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "SlowDown",
        "RequestLimitExceeded",
    }
)


def error_code(error: ClientError) -> str:
    """The error code of a failed call, or "" when the response has none."""
    return str(error.response.get("Error", {}).get("Code", ""))
