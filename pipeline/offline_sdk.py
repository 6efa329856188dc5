"""Keeping the SageMaker SDK offline, quiet and deterministic while it builds the definition.

The SDK would otherwise walk the credential chain, look up role names in IAM, ask for a default
bucket, read defaults files on the building machine, send telemetry, log notebook advice and
replace `sys.excepthook`. These helpers stop each of those; the builder runs inside them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    from sagemaker.workflow.pipeline_context import PipelineSession

_SDK_LOGGERS_QUIET_UP_TO = logging.WARNING

# Static placeholder credentials: creating clients then never walks the credential chain
# (profiles, SSO, credential_process, instance metadata). No request is ever sent with them.
_OFFLINE_KEY = "offline-definition-build"

# The SDK reads its defaults config (TelemetryOptOut, and any defaults it would inject into jobs)
# from the session. Handing it this config keeps files on the building machine out of the build.
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


class OfflineRequestError(RuntimeError):
    """Something tried to call AWS while the definition was being built."""


def _refuse_request(request: Any, **_kwargs: Any) -> None:
    raise OfflineRequestError(
        f"the pipeline definition build tried to call AWS ({request.method} {request.url}); "
        "building must stay offline: pass explicit ARNs and names"
    )


def _offline_boto_session(region: str) -> boto3.Session:
    import boto3

    session = boto3.Session(
        aws_access_key_id=_OFFLINE_KEY, aws_secret_access_key=_OFFLINE_KEY, region_name=region
    )
    # Every client made from this session refuses to send a request, before any socket opens.
    session.events.register("before-send", _refuse_request)
    return session


# One session per region and process: making one validates the SDK's config schema three times
# and builds nine clients, two thirds of a build's time, and a CDK synth builds once per stage.
# Steps keep no state in it between builds (tested: repeated builds give the same bytes). Like the
# rest of the build (boto3's default session, logging), it is not for concurrent threads.
@functools.cache
def offline_session(region: str) -> PipelineSession:
    """A PipelineSession that makes no AWS call: it never expands role names and has no bucket."""
    from sagemaker.workflow.pipeline_context import PipelineSession

    class OfflinePipelineSession(PipelineSession):
        def expand_role(self, role: str) -> str:
            # Role ARNs are given whole; a CDK token has no "/" and would otherwise go to IAM.
            return role

        def default_bucket(self) -> str:
            raise OfflineRequestError(
                "the SageMaker SDK asked for its default bucket; every S3 location of the "
                "pipeline must be given explicitly"
            )

    boto_session = _offline_boto_session(region)
    session = OfflinePipelineSession(boto_session=boto_session, sagemaker_config=SDK_CONFIG)
    # Every config lookup validates the whole config against the SDK's JSON schema (about 0.4 s
    # each, some twenty lookups per estimator). Nothing but the telemetry opt-out is configured,
    # so lookups see no config, and `telemetry_opted_out` restores it where telemetry reads it.
    session.sagemaker_config = {}
    return session


@contextlib.contextmanager
def telemetry_opted_out(session: PipelineSession) -> Iterator[None]:
    """The opt-out config in place while fit() runs: its telemetry wrapper reads it there."""
    session.sagemaker_config = SDK_CONFIG
    try:
        yield
    finally:
        session.sagemaker_config = {}


@contextlib.contextmanager
def offline_default_session(boto_session: boto3.Session) -> Iterator[None]:
    """boto3's default session is the offline one while the SDK builds.

    Every estimator makes a Studio TensorBoard helper with `boto3.client(...)` from the default
    session; with the offline session there, no credential chain is walked.
    """
    import boto3

    previous = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = boto_session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


@contextlib.contextmanager
def quiet_sdk() -> Iterator[None]:
    """Silence the SDK's notebook advice while it imports and builds; undo its global changes.

    The SDK logs (some of it to stdout) and warns about v2 deprecation, recipe replicas and job
    names, none of which applies here; importing it also replaces `sys.excepthook`.
    """
    excepthook = sys.excepthook
    previous_disable = logging.root.manager.disable
    logging.disable(_SDK_LOGGERS_QUIET_UP_TO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)
        sys.excepthook = excepthook
