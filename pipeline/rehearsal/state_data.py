"""The data side of the rehearsal's States Language interpreter (rehearsal/state_machine.py):
paths (`$.a.b`, `$$.State.EnteredTime`, one filter form), intrinsic functions, Parameters and
ResultSelector templates, ResultPath, and Choice rules. Anything outside the subset raises
DefinitionError naming it; a path missing from the data raises States.Runtime, as AWS does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError


class StatesError(Exception):
    """An error raised by a state, as Step Functions names it (`Error`, `Cause`)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


class _Missing:
    pass


MISSING = _Missing()


def read_path(path: str, data: Any, context: dict[str, Any]) -> Any:
    """The value at a JSONPath of the subset; MISSING when a field is absent."""
    if path.startswith("$$"):
        data, path = context, path[1:]
    if path == "$":
        return data
    filtered = _FILTER.fullmatch(path)
    if filtered:  # `$.List[?(@.Key == 'text')].Field`: the Field of each matching item
        items = read_path(filtered.group(1), data, context)
        if not isinstance(items, list):
            return MISSING
        key, value, field_name = filtered.group(2), filtered.group(3), filtered.group(4)
        return [
            item[field_name]
            for item in items
            if isinstance(item, dict) and item.get(key) == value and field_name in item
        ]
    if not path.startswith("$.") or "[" in path:
        raise DefinitionError(f"path {path!r} is outside the supported subset")
    for part in path[2:].split("."):
        if not isinstance(data, dict) or part not in data:
            return MISSING
        data = data[part]
    return data


_FILTER = re.compile(r"(\$[\w.]*)\[\?\(@\.(\w+) == '([^']*)'\)\]\.(\w+)")


def required(path: str, data: Any, context: dict[str, Any]) -> Any:
    value = read_path(path, data, context)
    if value is MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path} could not be found in the input")
    return value


_TOKEN = re.compile(
    r"\s*('(?:\\.|[^'\\])*'|States\.[A-Za-z]+\(|\$\$?[\w.]*|-?\d+(?:\.\d+)?|true|false|\)|,)"
)


def intrinsic(text: str, data: Any, context: dict[str, Any]) -> Any:
    """Evaluate an intrinsic function call such as `States.Format('v{}', $.a)`."""
    tokens = list(_TOKEN.findall(text))
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise DefinitionError(f"cannot read the intrinsic {text!r}")
    value, end = _call(tokens, 0, data, context)
    if end != len(tokens):
        raise DefinitionError(f"trailing text in the intrinsic {text!r}")
    return value


def _call(tokens: list[str], at: int, data: Any, context: dict[str, Any]) -> tuple[Any, int]:
    token = tokens[at].strip()
    if token.startswith("States."):
        name, args, at = token[:-1], [], at + 1
        while tokens[at].strip() != ")":
            value, at = _call(tokens, at, data, context)
            args.append(value)
            if tokens[at].strip() == ",":
                at += 1
        return _apply(name, args), at + 1
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1]), at + 1
    if token.startswith("$"):
        return required(token, data, context), at + 1
    if token in ("true", "false"):
        return token == "true", at + 1  # noqa: S105 - a JSON boolean, not a secret
    return json.loads(token), at + 1


def _apply(name: str, args: list[Any]) -> Any:
    if name == "States.Format":
        template, values = args[0], [v if isinstance(v, str) else json.dumps(v) for v in args[1:]]
        parts = template.split("{}")
        if len(parts) != len(values) + 1:
            raise StatesError("States.Runtime", f"{template!r} takes {len(parts) - 1} values")
        return "".join(p + (values[i] if i < len(values) else "") for i, p in enumerate(parts))
    if name == "States.Hash":
        text, algorithm = args
        if algorithm != "SHA-256":
            raise DefinitionError(f"States.Hash with {algorithm} is outside the subset")
        return hashlib.sha256(str(text).encode()).hexdigest()
    if name == "States.JsonMerge":
        first, second, deep = args
        if deep:
            raise DefinitionError("States.JsonMerge deep merge is outside the subset")
        return {**first, **second}
    if name == "States.ArrayLength":
        return len(args[0])
    if name == "States.ArrayGetItem":
        items, index = args
        if not 0 <= int(index) < len(items):
            raise StatesError("States.Runtime", f"index {index} outside an array of {len(items)}")
        return items[int(index)]
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    raise DefinitionError(f"intrinsic {name} is outside the supported subset")


def fill(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """A Parameters or ResultSelector template with its `.$` fields evaluated."""
    if isinstance(template, list):
        return [fill(item, data, context) for item in template]
    if not isinstance(template, dict):
        return template
    result: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            result[key[:-2]] = (
                intrinsic(value, data, context)
                if value.startswith("States.")
                else required(value, data, context)
            )
        else:
            result[key] = fill(value, data, context)
    return result


def put(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    if not path.startswith("$."):
        raise DefinitionError(f"ResultPath {path!r} is outside the supported subset")
    merged = json.loads(json.dumps(data))
    target = merged
    parts = path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return merged


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    """Whether a Choice rule of the subset matches."""
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    if "And" in rule:
        return all(matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data, context) for r in rule["Or"])
    value = read_path(rule["Variable"], data, context)
    if "IsPresent" in rule:
        return (value is not MISSING) == bool(rule["IsPresent"])
    if value is MISSING:
        raise StatesError("States.Runtime", f"Invalid path {rule['Variable']}: not in the input")
    return _compare(rule, value, data, context)


def _compare(rule: dict[str, Any], value: Any, data: Any, context: dict[str, Any]) -> bool:
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "StringEqualsPath" in rule:
        return isinstance(value, str) and value == read_path(
            rule["StringEqualsPath"], data, context
        )
    if "NumericEquals" in rule:
        return isinstance(value, int | float) and value == rule["NumericEquals"]
    raise DefinitionError(f"Choice rule {sorted(rule)} is outside the supported subset")
