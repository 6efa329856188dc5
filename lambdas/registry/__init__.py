"""The model registry as this pipeline uses it: register a trained checkpoint, read the lineage.

Every function takes its boto3 clients as arguments (`sm` for SageMaker, `s3` for S3). The
package's public API, re-exported from its modules:

- `records`: what each version records, in CustomerMetadataProperties under the `KEY_*` names
  and the knob names of `lambdas.recipe.spec.KNOBS` (docs/decisions/0003-model-package-fields.md);
  `CheckpointRecord.replay_parameters()` turns it back into pipeline parameters.
- `request`: the register step's event, checked (`RegistrationRequest.from_event`).
- `registration`: `register_checkpoint(sm, s3, request)`, one model package version per training
  job in the group, found again (never created twice) for the same `TrainingJobName`. It reads
  the run's recipe (`recipe_facts`, for its sha256 and hyperparameters) and streams the job's
  output.tar.gz (`lambdas.checkpoint`); the metadata is built and checked in `metadata`; any
  problem raises (`errors`) before anything is created.
- `lineage`, over the versions that carry `CheckpointS3Uri` metadata (others are ignored):
  `latest_checkpoint(sm, group, approved_only=...)`: the newest (approved) checkpoint, or None;
  `ancestry(sm, group, checkpoint_uri)`: that checkpoint, its parent, the parent's parent, ...;
  `iter_checkpoints(sm, group)`: every checkpoint, newest first, each version described only
  when reached; `list_checkpoints(sm, group)` is the same as a list;
  `find_checkpoint(sm, group, uri)`, `describe_checkpoint(sm, arn)`.
- `approval`: `set_approval(sm, arn, status)`: approve or reject, keeping the metadata.
- `continuity` (imported as `lambdas.registry.continuity`): a run from a checkpoint keeps its
  technique.
"""

from lambdas.registry.approval import set_approval
from lambdas.registry.errors import RegistrationError, s3_read_error, sagemaker_error
from lambdas.registry.lineage import (
    CheckpointNotFoundError,
    ancestry,
    describe_checkpoint,
    find_checkpoint,
    find_registration,
    iter_checkpoints,
    latest_checkpoint,
    list_checkpoints,
)
from lambdas.registry.metadata import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE_CHARS,
    build_metadata,
    metadata_problem,
)
from lambdas.registry.recipe_facts import MAX_RECIPE_BYTES, RecipeFacts, read_recipe
from lambdas.registry.records import (
    APPROVAL_STATUSES,
    DEFAULT_APPROVAL_STATUS,
    HYPERPARAMETER_KEYS,
    KEY_CHECKPOINT,
    KEY_FINAL_LOSS,
    KEY_FIRST_LOSS,
    KEY_INSTANCE_COUNT,
    KEY_INSTANCE_TYPE,
    KEY_MAX_RUNTIME,
    KEY_METRICS_UNAVAILABLE,
    KEY_MIN_LOSS,
    KEY_PARENT,
    KEY_PIPELINE_EXECUTION,
    KEY_RECIPE_SHA256,
    KEY_RECIPE_URI,
    KEY_RECORD_VERSION,
    KEY_RUN_NAME,
    KEY_SOURCE_PACKAGE,
    KEY_TECHNIQUE,
    KEY_TRAIN_DATA,
    KEY_TRAINING_JOB,
    KEY_TRAINING_STEPS,
    KEY_VALIDATION_DATA,
    NOTHING,
    RECORD_VERSION,
    REGISTRATION_STATUSES,
    CheckpointRecord,
)
from lambdas.registry.registration import (
    PackageExtras,
    Registered,
    client_token,
    describe_run,
    read_output_archive,
    register_checkpoint,
    require_group,
)
from lambdas.registry.request import MAX_RUNTIME_LIMIT, MODEL_PACKAGE_ARN, RegistrationRequest

__all__ = [
    "APPROVAL_STATUSES",
    "DEFAULT_APPROVAL_STATUS",
    "HYPERPARAMETER_KEYS",
    "KEY_CHECKPOINT",
    "KEY_FINAL_LOSS",
    "KEY_FIRST_LOSS",
    "KEY_INSTANCE_COUNT",
    "KEY_INSTANCE_TYPE",
    "KEY_MAX_RUNTIME",
    "KEY_METRICS_UNAVAILABLE",
    "KEY_MIN_LOSS",
    "KEY_PARENT",
    "KEY_PIPELINE_EXECUTION",
    "KEY_RECIPE_SHA256",
    "KEY_RECIPE_URI",
    "KEY_RECORD_VERSION",
    "KEY_RUN_NAME",
    "KEY_SOURCE_PACKAGE",
    "KEY_TECHNIQUE",
    "KEY_TRAINING_JOB",
    "KEY_TRAINING_STEPS",
    "KEY_TRAIN_DATA",
    "KEY_VALIDATION_DATA",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_VALUE_CHARS",
    "MAX_RECIPE_BYTES",
    "MAX_RUNTIME_LIMIT",
    "MODEL_PACKAGE_ARN",
    "NOTHING",
    "RECORD_VERSION",
    "REGISTRATION_STATUSES",
    "CheckpointNotFoundError",
    "CheckpointRecord",
    "PackageExtras",
    "RecipeFacts",
    "Registered",
    "RegistrationError",
    "RegistrationRequest",
    "ancestry",
    "build_metadata",
    "client_token",
    "describe_checkpoint",
    "describe_run",
    "find_checkpoint",
    "find_registration",
    "iter_checkpoints",
    "latest_checkpoint",
    "list_checkpoints",
    "metadata_problem",
    "read_output_archive",
    "read_recipe",
    "register_checkpoint",
    "require_group",
    "s3_read_error",
    "sagemaker_error",
    "set_approval",
]
