"""Bedrock requests as the stand-in (pipeline/rehearsal/stand_in_bedrock.py) reads them: which
operation a REST path is, every request checked against botocore's service model, and errors
answered as Bedrock answers them.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from botocore.model import Shape


class BedrockError(Exception):
    """An error answered as Bedrock answers it: HTTP status, error type, message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def check(shape: Shape, value: Any, where: str) -> None:
    """Raise ValidationException where `value` breaks `shape` (botocore's service model)."""
    meta = shape.metadata
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            raise BedrockError(400, "ValidationException", f"{where} must be an object")
        members = shape.members
        unknown = set(value) - set(members)
        missing = set(shape.required_members) - set(value)
        if unknown or missing:
            raise BedrockError(
                400,
                "ValidationException",
                f"{where}: unknown {sorted(unknown)}, missing {sorted(missing)}",
            )
        for name, item in value.items():
            check(members[name], item, f"{where}.{name}")
    elif shape.type_name == "list":
        if not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
            raise BedrockError(400, "ValidationException", f"{where}: {len(value)} items")
        for index, item in enumerate(value):
            check(shape.member, item, f"{where}[{index}]")
    elif shape.type_name == "string":
        if not isinstance(value, str):
            raise BedrockError(400, "ValidationException", f"{where} must be a string")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
            raise BedrockError(
                400, "ValidationException", f"{where}: length {len(value)} outside {meta}"
            )
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            raise BedrockError(
                400, "ValidationException", f"{where}: {value!r} does not match {meta['pattern']}"
            )
        if "enum" in meta and value not in meta["enum"]:
            raise BedrockError(
                400, "ValidationException", f"{where}: {value!r} not in {meta['enum']}"
            )


def route(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The operation a Bedrock request is for, with its URI and query members (None: not one
    the stand-in serves)."""
    routes = (
        ("POST", r"/custom-models/create-custom-model", "CreateCustomModel", None),
        ("GET", r"/custom-models/(?P<v>[^/?]+)", "GetCustomModel", "modelIdentifier"),
        ("DELETE", r"/custom-models/(?P<v>[^/?]+)", "DeleteCustomModel", "modelIdentifier"),
        (
            "POST",
            r"/model-customization/custom-model-deployments",
            "CreateCustomModelDeployment",
            None,
        ),
        (
            "GET",
            r"/model-customization/custom-model-deployments/(?P<v>[^/?]+)",
            "GetCustomModelDeployment",
            "customModelDeploymentIdentifier",
        ),
        (
            "DELETE",
            r"/model-customization/custom-model-deployments/(?P<v>[^/?]+)",
            "DeleteCustomModelDeployment",
            "customModelDeploymentIdentifier",
        ),
        ("POST", r"/model/(?P<v>[^/?]+)/converse", "Converse", "modelId"),
        (
            "GET",
            r"/model-customization/custom-model-deployments",
            "ListCustomModelDeployments",
            None,
        ),
        ("POST", r"/listTagsForResource", "ListTagsForResource", None),
    )
    for verb, pattern, operation, label in routes:
        found = re.fullmatch(pattern + r"(\?(?P<query>.*))?", path)
        if verb == method and found:
            uri = {label: urllib.parse.unquote(found.group("v"))} if label else {}
            query = dict(urllib.parse.parse_qsl(found.group("query") or ""))
            if "maxResults" in query:
                query["maxResults"] = int(query["maxResults"])
            return operation, {**query, **uri}
    return None


def raw_path(environ: dict[str, Any]) -> str:
    # The percent-encoded path: an ARN in a URI label keeps its encoded "/".
    return str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"])


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
