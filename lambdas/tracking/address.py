"""Where a SageMaker MLflow tracking server answers, from its ARN.

As the `sagemaker-mlflow` plugin documents and implements it (aws/sagemaker-mlflow,
`mlflow_sagemaker_helpers.py`, `auth.py`, `mlflow_sagemaker_request_header_provider.py`;
unverified against AWS): every tracking server of a region answers MLflow's REST API at
`https://<region>.experiments.sagemaker.aws`, requests are signed with SigV4 for the service
`sagemaker-mlflow`, and the header `x-mlflow-sm-tracking-server-arn` names the server. The plugin
reads another endpoint from `SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`; so does this client, which is how
the rehearsal points a tracking ARN at a local `mlflow server`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SIGNING_SERVICE = "sagemaker-mlflow"
ARN_HEADER = "x-mlflow-sm-tracking-server-arn"
ENDPOINT_OVERRIDE = "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"
TRACKING_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"(?P<kind>mlflow-tracking-server|mlflow-app)/(?P<name>[A-Za-z0-9-]{1,256})"
)
# The plugin knows these partitions' DNS suffix; any other is refused rather than guessed.
_DNS_SUFFIX = {"aws": "aws", "aws-us-gov": "aws"}


class TrackingAddressError(ValueError):
    """The tracking ARN (or the endpoint override) cannot be used; the message says why."""


@dataclass(frozen=True)
class TrackingAddress:
    """A tracking server: its ARN, its region (for signing) and the endpoint to call."""

    arn: str
    region: str
    endpoint: str

    @property
    def name(self) -> str:
        """The server's name (the last part of its ARN)."""
        return self.arn.rsplit("/", 1)[-1]


def tracking_address(arn: str, environ: Mapping[str, str] | None = None) -> TrackingAddress:
    """The address of the tracking server `arn`; `environ` may override the endpoint
    (`SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`, an http(s):// URL)."""
    match = TRACKING_ARN.fullmatch(arn.strip()) if isinstance(arn, str) else None
    if match is None:
        raise TrackingAddressError(
            f"{arn!r} is not the ARN of a SageMaker MLflow tracking server "
            "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
        )
    override = (environ or {}).get(ENDPOINT_OVERRIDE, "").strip()
    if override:
        if not override.startswith(("http://", "https://")):
            raise TrackingAddressError(
                f"{ENDPOINT_OVERRIDE}={override!r} must be an http:// or https:// URL"
            )
        endpoint = override.rstrip("/")
    else:
        suffix = _DNS_SUFFIX.get(match["partition"])
        if suffix is None:
            raise TrackingAddressError(
                f"{arn}: partition {match['partition']} has no known MLflow endpoint; set "
                f"{ENDPOINT_OVERRIDE}"
            )
        endpoint = f"https://{match['region']}.experiments.sagemaker.{suffix}"
    return TrackingAddress(arn=arn.strip(), region=match["region"], endpoint=endpoint)
