"""The environments of this project, parsed once from cdk.json context into frozen dataclasses.

`app.py` and the operator commands both read cdk.json with `read_cdk_json`, so they see one
definition of every environment. Unknown or missing keys fail loudly with the key and the file
to fix (docs/decisions/0001-project-layout-and-configuration.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lambdas.recipe.spec import (
    ALLOWED_REPLICAS,
    NOVA_SFT_IMAGE_ACCOUNTS,
    SUPPORTED_INSTANCE_TYPES,
)
from pipeline.serving_config import ServingConfig, serving_problems
from pipeline.tracking_config import (
    TRACKING_CREATE,
    TRACKING_OFF,
    TRACKING_OVERRIDE_CONTEXT,
    tracking_problems,
)

CONTEXT_KEY = "nova-sft"
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:"
    r"connection/[A-Za-z0-9-]+$"
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class ConfigError(ValueError):
    """cdk.json does not describe the environments correctly; the message says what to fix."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """One deployable environment (a `cdk.Stage`).

    `account` is None only where the stacks may follow the deploying credentials' account
    (the single-user sandbox); every other environment names its account.
    """

    name: str
    account: str | None
    region: str
    training_instance_type: str
    training_instance_count: int
    max_runtime_seconds: int
    noncurrent_version_retention_days: int
    log_retention_days: int
    termination_protection: bool
    # Optional in cdk.json (default: off); pipeline/serving_config.py.
    serving: ServingConfig = field(default_factory=ServingConfig)
    # "off", "create" or the ARN of an existing MLflow tracking server (optional in cdk.json).
    tracking: str = TRACKING_OFF

    @property
    def tracking_enabled(self) -> bool:
        """Whether training runs and registrations log to an MLflow tracking server."""
        return self.tracking != TRACKING_OFF

    @property
    def creates_tracking_server(self) -> bool:
        """Whether the TrainingStack creates the tracking server (`tracking` is "create")."""
        return self.tracking == TRACKING_CREATE

    @property
    def tracking_server_name(self) -> str:
        """The name of the tracking server the stack creates (the pipeline's name)."""
        return self.pipeline_name

    @property
    def pipeline_name(self) -> str:
        """The SageMaker pipeline's name: fixed, so operators and the toolchain can find it."""
        return f"{CONTEXT_KEY}-{self.name}"

    @property
    def model_package_group_name(self) -> str:
        """The model registry group that holds every checkpoint this environment trains."""
        return f"{CONTEXT_KEY}-{self.name}-checkpoints"


@dataclass(frozen=True)
class ToolchainConfig:
    """The toolchain: the CI/CD pipeline that deploys `stages` in order from one repository.

    It lives in its own `account` and `region`; its source is `branch` of `repository`
    ("owner/name") through the CodeStar connection `connection_arn`. Every name in `stages`
    is an environment with an account; a manual approval precedes each stage named in
    `manual_approval_before`.
    """

    account: str
    region: str
    connection_arn: str
    repository: str
    branch: str
    stages: tuple[str, ...]
    manual_approval_before: tuple[str, ...]

    @property
    def pipeline_name(self) -> str:
        """The CodePipeline's name (and the toolchain stack's)."""
        return f"{CONTEXT_KEY}-toolchain"


@dataclass(frozen=True)
class ProjectConfig:
    """Everything under the `nova-sft` key of cdk.json context.

    `toolchain` is None when cdk.json has no `toolchain` object: every environment is then
    deployed by hand (`cdk deploy '<env>/*'`).
    """

    default_environment: str
    environments: dict[str, EnvironmentConfig]
    toolchain: ToolchainConfig | None = None

    def environment(self, name: str) -> EnvironmentConfig:
        """The named environment; ConfigError lists the ones that exist."""
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(
                f"no environment {name!r} in cdk.json context '{CONTEXT_KEY}.environments'; "
                f"known environments: {known}"
            ) from None


_ENV_TYPES: dict[str, type] = {
    "account": str,
    "region": str,
    "training_instance_type": str,
    "training_instance_count": int,
    "max_runtime_seconds": int,
    "noncurrent_version_retention_days": int,
    "log_retention_days": int,
    "termination_protection": bool,
}
_ENV_KEYS = {f.name for f in fields(EnvironmentConfig)} - {"name", "serving", "tracking"}
_ENV_OPTIONAL = frozenset({"serving", "tracking"})

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)


def _check_keys(
    where: str, got: dict[str, Any], expected: set[str], optional: frozenset[str] = frozenset()
) -> None:
    unknown = sorted(set(got) - expected - optional)
    missing = sorted(expected - set(got))
    problems = []
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if problems:
        allowed = f"expected exactly: {', '.join(sorted(expected))}"
        if optional:
            allowed += f"; optional: {', '.join(sorted(optional))}"
        raise ConfigError(f"cdk.json context {where}: {'; '.join(problems)} ({allowed})")


def _type_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    for key, kind in _ENV_TYPES.items():
        value = raw[key]
        if key == "account" and value is None:
            continue
        # bool is an int in Python: do not let `true` pass as a count, or 1 as a flag.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{key} must be a {kind.__name__}, got {value!r}")
    return problems


def _value_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    account = raw["account"]
    if account is not None and not _ACCOUNT.match(account):
        problems.append(f"account must be 12 digits, got {account!r}")
    if raw["region"] not in NOVA_SFT_IMAGE_ACCOUNTS:
        problems.append(
            f"region {raw['region']!r} has no Nova 2 SFT training image; "
            f"use one of {', '.join(sorted(NOVA_SFT_IMAGE_ACCOUNTS))}"
        )
    if raw["training_instance_type"] not in SUPPORTED_INSTANCE_TYPES:
        problems.append(
            f"training_instance_type must be one of {', '.join(SUPPORTED_INSTANCE_TYPES)}"
        )
    allowed_counts = sorted(set(ALLOWED_REPLICAS["LoRA"]) | set(ALLOWED_REPLICAS["FullRank"]))
    if raw["training_instance_count"] not in allowed_counts:
        problems.append(f"training_instance_count must be one of {allowed_counts}")
    if not 3600 <= raw["max_runtime_seconds"] <= 28 * 24 * 3600:
        problems.append("max_runtime_seconds must be between 3600 and 2419200 (28 days)")
    if raw["noncurrent_version_retention_days"] < 1:
        problems.append("noncurrent_version_retention_days must be at least 1")
    if raw["log_retention_days"] not in LOG_RETENTION_DAYS:
        problems.append(f"log_retention_days must be one of {list(LOG_RETENTION_DAYS)}")
    if account is None and raw["termination_protection"]:
        problems.append("an environment with termination protection must name its account")
    problems += tracking_problems(raw.get("tracking", TRACKING_OFF), raw["region"], account)
    return problems


def _parse_environment(name: str, raw: Any) -> EnvironmentConfig:
    where = f"'{CONTEXT_KEY}.environments.{name}'"
    if not _NAME.match(name):
        raise ConfigError(
            f"cdk.json context {where}: environment names are 3 to 32 lowercase letters, "
            "digits and hyphens, starting with a letter"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json context {where} must be an object")
    _check_keys(where, raw, _ENV_KEYS, optional=_ENV_OPTIONAL)
    # `serving` is parsed on its own (pipeline/serving_config.py); `tracking` is a plain value.
    settings = {k: v for k, v in raw.items() if k != "serving"}
    problems = _type_problems(settings) or _value_problems(settings)
    serving, serving_errors = ServingConfig(), list[str]()
    if "serving" in raw and not problems:
        parsed, serving_errors = serving_problems(raw["serving"], raw["region"])
        serving = parsed or serving
    problems += serving_errors
    if problems:
        raise ConfigError(f"cdk.json context {where}: {'; '.join(problems)}")
    return EnvironmentConfig(name=name, serving=serving, **settings)


_TOOLCHAIN_KEYS = {f.name for f in fields(ToolchainConfig)}


def _toolchain_problems(
    raw: dict[str, Any], environments: dict[str, EnvironmentConfig]
) -> list[str]:
    texts = ("account", "region", "connection_arn", "repository", "branch")
    problems = [f"{key} must be a str, got {raw[key]!r}" for key in texts if not _is_text(raw[key])]
    lists = ("stages", "manual_approval_before")
    problems += [
        f"{key} must be a list of environment names, got {raw[key]!r}"
        for key in lists
        if not isinstance(raw[key], list) or not all(_is_text(item) for item in raw[key])
    ]
    if problems:
        return problems
    if not _ACCOUNT.match(raw["account"]):
        problems.append(f"account must be 12 digits, got {raw['account']!r}")
    if not _REGION.match(raw["region"]):
        problems.append(f"region must be an AWS region such as us-east-1, got {raw['region']!r}")
    if not _CONNECTION_ARN.match(raw["connection_arn"]):
        problems.append(
            "connection_arn must be the ARN of a CodeStar connection "
            "(arn:aws:codeconnections:<region>:<account>:connection/<id>), "
            f"got {raw['connection_arn']!r}"
        )
    if not _REPOSITORY.match(raw["repository"]):
        problems.append(f"repository must be owner/name, got {raw['repository']!r}")
    stages = raw["stages"]
    if not stages:
        problems.append("stages must name at least one environment")
    if len(set(stages)) != len(stages):
        problems.append(f"stages must not repeat an environment, got {stages}")
    for name in stages:
        if name not in environments:
            problems.append(
                f"stage {name!r} is not an environment; known: {', '.join(sorted(environments))}"
            )
        elif environments[name].account is None:
            problems.append(f"stage {name!r} must name its account in its environment")
    for name in raw["manual_approval_before"]:
        if name not in stages:
            problems.append(f"manual_approval_before names {name!r}, which is not in stages")
    return problems


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _parse_toolchain(raw: Any, environments: dict[str, EnvironmentConfig]) -> ToolchainConfig:
    where = f"'{CONTEXT_KEY}.toolchain'"
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json context {where} must be an object")
    _check_keys(where, raw, _TOOLCHAIN_KEYS)
    problems = _toolchain_problems(raw, environments)
    if problems:
        raise ConfigError(f"cdk.json context {where}: {'; '.join(problems)}")
    return ToolchainConfig(
        account=raw["account"],
        region=raw["region"],
        connection_arn=raw["connection_arn"],
        repository=raw["repository"],
        branch=raw["branch"],
        stages=tuple(raw["stages"]),
        manual_approval_before=tuple(raw["manual_approval_before"]),
    )


def load_environments(context: Any) -> ProjectConfig:
    """Parse the `nova-sft` context object (as `read_cdk_json` reads it from cdk.json).

    `default_environment` and `environments` are required; `toolchain` is optional.
    """
    if not isinstance(context, dict):
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}' must be an object")
    _check_keys(
        f"'{CONTEXT_KEY}'",
        context,
        {"default_environment", "environments"},
        optional=frozenset({"toolchain"}),
    )
    raw_envs = context["environments"]
    if not isinstance(raw_envs, dict) or not raw_envs:
        raise ConfigError(
            f"cdk.json context '{CONTEXT_KEY}.environments' must be a non-empty object"
        )
    environments = {name: _parse_environment(name, raw) for name, raw in raw_envs.items()}
    default = context["default_environment"]
    if default not in environments:
        raise ConfigError(
            f"cdk.json context '{CONTEXT_KEY}.default_environment' is {default!r}, "
            f"which is not one of the environments: {', '.join(sorted(environments))}"
        )
    toolchain = None
    if "toolchain" in context:
        toolchain = _parse_toolchain(context["toolchain"], environments)
    return ProjectConfig(
        default_environment=default, environments=environments, toolchain=toolchain
    )


def override_tracking(project: ProjectConfig, override: object) -> ProjectConfig:
    """`project` with one environment's `tracking` replaced, from the context value
    `<env>=<off|create|ARN>` of `TRACKING_OVERRIDE_CONTEXT` (None: `project` unchanged)."""
    if override is None:
        return project
    where = f"context {TRACKING_OVERRIDE_CONTEXT}"
    name, separator, value = str(override).partition("=")
    if not separator:
        raise ConfigError(
            f"{where}={override!r}: write <environment>=<off|create|ARN>, "
            f"e.g. -c {TRACKING_OVERRIDE_CONTEXT}=sandbox=create"
        )
    env = project.environment(name.strip())
    problems = tracking_problems(value.strip(), env.region, env.account)
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)}")
    environments = {**project.environments, env.name: replace(env, tracking=value.strip())}
    return replace(project, environments=environments)


def read_cdk_json(path: Path = CDK_JSON) -> ProjectConfig:
    """Read and parse cdk.json directly (for commands that run outside `cdk synth`)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run the command from the project's root") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise ConfigError(f'{path} must hold a JSON object with a "context" object')
    return load_environments(context.get(CONTEXT_KEY))
