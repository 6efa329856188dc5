"""Experiment tracking in SageMaker's managed MLflow, through MLflow's REST API.

The package's public API, re-exported from its modules (docs/decisions/0020-experiment-tracking.md):
- `address`: `tracking_address(arn, environ)`: the endpoint of a tracking server's ARN (or the
  `SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT` override) and the region to sign for.
- `client`: `TrackingClient(address)`: SigV4-signed JSON calls; `TrackingError` carries MLflow's
  error code.
- `runs`: `log_to_run(client, experiment_name=, run_name=, metrics=, params=, tags=)` finds or
  creates the run and logs to it; `find_or_create_run`, `log_batch`, `finish_run`, `list_runs`,
  `lineage_tags`.
"""

from lambdas.tracking.address import (
    ARN_HEADER,
    ENDPOINT_OVERRIDE,
    SIGNING_SERVICE,
    TRACKING_ARN,
    TrackingAddress,
    TrackingAddressError,
    tracking_address,
)
from lambdas.tracking.client import TrackingClient, TrackingError, sigv4_signer
from lambdas.tracking.runs import (
    TAG_CHECKPOINT,
    TAG_MODEL_PACKAGE,
    TAG_PARENT,
    TAG_TRAINING_JOB,
    experiment_id,
    find_or_create_run,
    find_run,
    finish_run,
    lineage_tags,
    list_runs,
    log_batch,
    log_to_run,
)

__all__ = [
    "ARN_HEADER",
    "ENDPOINT_OVERRIDE",
    "SIGNING_SERVICE",
    "TAG_CHECKPOINT",
    "TAG_MODEL_PACKAGE",
    "TAG_PARENT",
    "TAG_TRAINING_JOB",
    "TRACKING_ARN",
    "TrackingAddress",
    "TrackingAddressError",
    "TrackingClient",
    "TrackingError",
    "experiment_id",
    "find_or_create_run",
    "find_run",
    "finish_run",
    "lineage_tags",
    "list_runs",
    "log_batch",
    "log_to_run",
    "sigv4_signer",
    "tracking_address",
]
