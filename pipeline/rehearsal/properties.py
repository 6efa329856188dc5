"""Property paths and values: a training step's properties read from its DescribeTrainingJob
response, each path held to botocore's shape of the real response, and Lambda outputs converted
to their declared types.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from pipeline.rehearsal.execution_record import DefinitionError

_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")


@functools.cache
def sagemaker_model() -> Any:
    """botocore's SageMaker service model: the real API shapes (loaded once, about 0.5 s)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def _shape_child(shape: Shape, token: tuple[str, str, str]) -> Shape:
    member, index, key = token
    if isinstance(shape, StructureShape) and member:
        if member not in shape.members:
            raise DefinitionError(f"{shape.name} has no member {member!r}")
        return shape.members[member]
    if isinstance(shape, ListShape) and index:
        return shape.member
    if isinstance(shape, MapShape) and key:
        return shape.value
    raise DefinitionError(f"cannot index {shape.name} ({shape.type_name}) with {token}")


def _parse_path(path: str) -> list[tuple[str, str, str]]:
    tokens = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise DefinitionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        tokens.append((match.group(1) or "", match.group(2) or "", match.group(3) or ""))
        position = match.end()
    return tokens


def property_value(path: str, shape: Shape, response: Any, prop: str) -> Any:
    """The value at `prop` in a response of `shape`; DefinitionError (naming `path`, the whole
    Get) when the real response has no such member or this response lacks it."""
    value = response
    for token in _parse_path(prop):
        try:
            shape = _shape_child(shape, token)
        except DefinitionError as err:
            raise DefinitionError(f"Get {path}: {err} in the real API response") from None
        member, index, key = token
        try:
            value = value[member or key] if (member or key) else value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise DefinitionError(f"Get {path}: the job's response has no {prop}") from None
    return value


def as_text(value: Any) -> str:
    """A value as the pipeline writes it in text: booleans lower case (`true`, `false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def convert(name: str, kind: str, value: Any) -> Any:
    """Convert a Lambda step's output to its declared OutputType."""
    text = as_text(value) if not isinstance(value, str) else value
    try:
        if kind == "String":
            return text
        if kind == "Integer":
            return int(text)
        if kind == "Float":
            return float(text)
        if kind == "Boolean":
            if text.lower() not in {"true", "false"}:
                raise ValueError(text)
            return text.lower() == "true"
    except ValueError:
        raise DefinitionError(f"{name}: {value!r} is not a valid {kind}") from None
    raise DefinitionError(f"{name}: type {kind!r} is not supported")
