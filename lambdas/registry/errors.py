"""Registration's failures as messages that name the object and the fix."""

from __future__ import annotations

from botocore.exceptions import ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, THROTTLED, error_code


class RegistrationError(RuntimeError):
    """Registration could not complete; the message names the object and the fix."""


def s3_read_error(error: ClientError, uri: str, missing_hint: str) -> RegistrationError:
    code = error_code(error)
    if code in NOT_FOUND:
        return RegistrationError(f"{uri} does not exist: {missing_hint}")
    if code == "NoSuchBucket":
        return RegistrationError(f"{uri}: bucket {uri.split('/')[2]} does not exist")
    if code in ACCESS_DENIED:
        return RegistrationError(
            f"access denied reading {uri}: grant the register function's role s3:GetObject "
            "on it and kms:Decrypt on the bucket's key"
        )
    if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
        return RegistrationError(
            f"cannot read {uri}: {code} after the client's retries: retry the step"
        )
    return RegistrationError(f"cannot read {uri}: {code or 'error'}: {error}")


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def sagemaker_error(error: ClientError, target: str) -> RegistrationError:
    """A failed SageMaker call on `target` (e.g. "model package group g") as a message with the
    fix; the action is the call's own name, so the message says which permission is missing."""
    code = error_code(error)
    action = f"sagemaker:{error.operation_name}"
    if code in ACCESS_DENIED:
        return RegistrationError(
            f"access denied calling {action} on {target}: grant the register function's role "
            f"{action} on it"
        )
    if code in THROTTLED:
        return RegistrationError(
            f"{action} on {target} was throttled after the client's retries: retry the step"
        )
    message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
    return RegistrationError(f"{action} on {target} failed: {code or 'error'}: {message}")
