"""The rules SageMaker Pipelines applies to StartPipelineExecution's parameter overrides.

One set of rules for everything that sends or reads overrides: the operator commands (`start`,
`promote`) check them before they start anything, and the local executor refuses an execution
whose stored overrides break them, so the rehearsal is never more lenient than the service.

Each rule names its source. Where the service's behaviour is not documented, the rule takes the
strict side (decision 0013): a value the service might refuse is refused here.

- Name: 1 to 256 characters of `[A-Za-z0-9-_]` (botocore's sagemaker model, shape
  `PipelineParameterName`); it "must match a named parameter in the pipeline definition" (the
  model's documentation of `Parameter.Name`).
- At most 200 overrides (botocore, `ParameterList` max 200). A name given twice: undocumented,
  refused.
- Value: at most 1,024 characters (botocore, `String1024`). The model allows length 0, but the
  service answers `string "" is too short (length: 0, required minimum: 1)` (reported in
  aws/sagemaker-python-sdk issue 4016; the SDK's local mode added the same check in pull request
  4354; EventBridge Scheduler documents `SageMakerPipelineParameter.Value` as 1 to 1,024): an
  empty value is refused.
- A parameter without a `DefaultValue` must be given (developer guide, "Pipeline parameters":
  parameters have a default, which an execution may override).
- A String parameter with `EnumValues` takes one of them only (the SDK's `ParameterString(
  enum_values=...)` writes them into the definition; enforcement is undocumented: refused).
- Integer, Float and Boolean values travel as text; how the service parses them is undocumented,
  so only JSON's literal forms (the definition's own `DefaultValue` forms) are accepted: Integer
  `-?(0|[1-9][0-9]*)` within a signed 32-bit range, Float a finite JSON number, Boolean exactly
  `true` or `false`. So `1_000`, ` 5`, `+5`, `05`, `TRUE`, `nan`, `inf` and `.5` are refused.

Defaults are not checked here: they are part of the definition, checked when it is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

NAME_PATTERN = re.compile(r"[A-Za-z0-9\-_]{1,256}")
MAX_OVERRIDES = 200
MAX_VALUE_LENGTH = 1024
MIN_VALUE_LENGTH = 1
INTEGER_RANGE = (-(2**31), 2**31 - 1)
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
KINDS = ("String", "Integer", "Float", "Boolean")

Declared = Mapping[str, Mapping[str, Any]]


class OverrideError(ValueError):
    """Overrides the service would refuse; `problems` has one line per refused item."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} parameter problem(s):\n- " + "\n- ".join(problems))
        self.problems = problems


def parse_value(name: str, spec: Mapping[str, Any], value: str) -> str | int | float | bool:
    """The typed value of one override; ValueError (naming parameter and rule) if refused."""
    kind = spec.get("Type", "String")
    if kind not in KINDS:
        raise ValueError(f"{name}: type {kind!r} is not a pipeline parameter type ({KINDS})")
    if not isinstance(value, str):
        raise ValueError(f"{name}={value!r}: a parameter value is sent as text")
    if len(value) < MIN_VALUE_LENGTH:
        raise ValueError(
            f"{name}='': the service refuses an empty value (minimum length 1): give a value "
            "or leave the parameter out to use its default"
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"{name}: {len(value)} characters, at most {MAX_VALUE_LENGTH} allowed")
    enum = spec.get("EnumValues")
    if enum and value not in enum:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(map(str, enum))}")
    if kind == "Integer":
        if not _INTEGER.fullmatch(value):
            raise ValueError(f"{name}={value!r}: must be an Integer written as digits, e.g. 20")
        number = int(value)
        if not INTEGER_RANGE[0] <= number <= INTEGER_RANGE[1]:
            raise ValueError(f"{name}={value!r}: must be an Integer within 32 bits")
        return number
    if kind == "Float":
        if not _FLOAT.fullmatch(value) or not math.isfinite(float(value)):
            raise ValueError(f"{name}={value!r}: must be a Float written as a number, e.g. 1e-05")
        return float(value)
    if kind == "Boolean":
        if value not in ("true", "false"):
            raise ValueError(f"{name}={value!r}: must be a Boolean, true or false")
        return value == "true"
    return value


def check(
    declared: Declared,
    overrides: Iterable[tuple[str, str]],
    *,
    require: bool = True,
    hints: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The typed overrides and every problem found (all of them, not the first).

    `require` checks that each parameter without a default is given (off for a partial check
    of what was typed, before the rest of the values are known); `hints` says, per parameter,
    how the caller gives it (e.g. "pass --train s3://bucket/key.jsonl").
    """
    pairs = list(overrides)
    problems: list[str] = []
    if len(pairs) > MAX_OVERRIDES:
        problems.append(f"{len(pairs)} parameters given, at most {MAX_OVERRIDES} allowed")
    seen: set[str] = set()
    typed: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in pairs:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            problems.append(f"{name!r} is not a parameter name ([A-Za-z0-9-_], 1 to 256)")
            continue
        if name in seen:
            problems.append(f"{name} is given more than once: give it once")
            continue
        seen.add(name)
        if name not in declared:
            unknown.append(name)
            continue
        try:
            typed[name] = parse_value(name, declared[name], value)
        except ValueError as err:
            problems.append(str(err))
    if unknown:
        problems.insert(
            0,
            f"unknown parameter(s) {', '.join(unknown)}: the pipeline's parameters are "
            f"{', '.join(declared)}",
        )
    if require:
        for name, spec in declared.items():
            if name not in seen and "DefaultValue" not in spec:
                hint = (hints or {}).get(name, "give it a value")
                problems.append(f"{name} is missing: {hint} (it has no default)")
    return typed, problems


def effective(declared: Declared, overrides: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Every parameter's value for an execution: typed overrides over the defaults.

    OverrideError if the service would refuse the overrides.
    """
    typed, problems = check(declared, overrides)
    if problems:
        raise OverrideError(problems)
    values = {n: spec["DefaultValue"] for n, spec in declared.items() if "DefaultValue" in spec}
    values.update(typed)
    return values


def declared_of_specs(specs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """`pipeline.definition.ParameterSpec`s in the definition's own `Parameters` form, so that
    what was typed can be checked before any AWS call (the deployed definition is checked
    again once it has been read)."""
    declared: dict[str, dict[str, Any]] = {}
    for spec in specs:
        entry: dict[str, Any] = {"Name": spec.name, "Type": spec.kind}
        if spec.default is not None:
            entry["DefaultValue"] = spec.default
        if spec.choices:
            entry["EnumValues"] = list(spec.choices)
        declared[spec.name] = entry
    return declared
