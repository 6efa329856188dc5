"""Tool and media checks of the bedrock-conversation-2024 format (mixed into `ConverseFormat`).

`FieldChecks` holds the shared field helpers (`_keys`, `_type`, `_check_text`), `ToolChecks` the
toolConfig, toolUse and toolResult rules, `MediaChecks` the image, video, document and
s3Location rules; `ToolAndMediaChecks` combines them. Every method reports through
`self._add(rule, path, message)`, which `ConverseFormat` provides; a null where the format needs
a value is a `field.null` finding, whatever the level.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from lambdas.dataset.rules import a_json, article, quote, text_problem

MEDIA_FORMATS: dict[str, frozenset[str]] = {
    # Nova 2 Lite's lists, the stricter of the published ones (webp images and webm videos are
    # accepted for Nova 1 but not for Nova 2 Lite).
    "image": frozenset({"png", "jpeg", "gif"}),
    "video": frozenset({"mov", "mkv", "mp4"}),
    "document": frozenset({"pdf"}),
}
MAX_MEDIA_PER_SAMPLE: dict[str, int] = {"image": 10, "video": 1, "document": 1}

_MEDIA_KEYS = frozenset({"format", "source"})
_S3_LOCATION_KEYS = frozenset({"uri", "bucketOwner"})
_TOOL_CONFIG_KEYS = frozenset({"tools"})
_TOOL_KEYS = frozenset({"toolSpec"})
_TOOL_SPEC_KEYS = frozenset({"name", "description", "inputSchema"})
_INPUT_SCHEMA_KEYS = frozenset({"json"})
_TOOL_USE_KEYS = frozenset({"toolUseId", "name", "input"})
_TOOL_RESULT_KEYS = frozenset({"toolUseId", "content", "status"})
_TOOL_RESULT_STATUS = frozenset({"success", "error"})

# Converse API constraints on tool names and toolUse ids.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOOL_USE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Bucket naming rules, and the key characters the Nova validators accept.
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9_./-]+)")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_FORMAT_HINTS = {"jpg": "jpeg", "JPG": "jpeg", "JPEG": "jpeg", "PNG": "png", "MP4": "mp4"}

ABSENT: Any = object()  # a key that is not there, as opposed to one that holds null


class SampleState:
    """What one sample uses, and the state of its turn and tool checks, gathered while walking."""

    __slots__ = (
        "answered",
        "media",
        "media_path",
        "open_uses",
        "order_reported",
        "reasoning_path",
        "tool_use_ids",
        "tools",
    )

    def __init__(self, tools: set[str] | None) -> None:
        self.tools = tools  # declared tool names; None without a toolConfig
        self.media: dict[str, int] = {}
        self.media_path = ""
        self.reasoning_path = ""
        self.tool_use_ids: set[str] = set()
        # toolUse ids of the latest assistant turn not yet answered, with their paths.
        self.open_uses: dict[str, str] = {}
        self.answered: set[str] = set()
        self.order_reported = False


class FieldChecks:
    """The field helpers every part check reports through: keys, JSON types and text."""

    _add: Callable[[str, str, str], None]

    def _keys(
        self, obj: dict[str, Any], allowed: frozenset[str], required: Iterable[str], path: str
    ) -> None:
        for key in required:
            if key not in obj:
                self._add("field.missing", f"{path}.{key}", f"add the required field {quote(key)}")
        if not obj.keys() <= allowed:
            expected = ", ".join(sorted(allowed))
            for key in obj:
                if key not in allowed:
                    self._add(
                        "field.unknown",
                        path,
                        f"field {quote(key)} is not part of the format here (expected only "
                        f"{expected}): remove or rename it",
                    )

    def _type(self, path: str, value: object, expected: str, *, optional: bool = False) -> None:
        """A value of the wrong JSON type; null is a finding of its own (`field.null`)."""
        if value is None:
            name = path.rsplit(".", 1)[-1]
            fix = f"give it a value, or leave {name} out" if optional else "give it a value"
            self._add(
                "field.null",
                path,
                f"{name} is null but must be {article('JSON ' + expected)}: {fix}",
            )
        else:
            self._add("field.type", path, f"expected a JSON {expected}, found {a_json(value)}")

    def _check_text(self, text: object, path: str) -> None:
        problem = text_problem(text)
        if problem is not None:
            self._add(problem[0], path, problem[1])


class ToolChecks(FieldChecks):
    """The toolConfig, toolUse and toolResult rules."""

    def _check_tool_config(self, config: object) -> set[str]:
        """The declared tool names (those that could be read, even from a broken spec)."""
        names: set[str] = set()
        if type(config) is not dict:
            self._type("$.toolConfig", config, "object", optional=True)
            return names
        self._keys(config, _TOOL_CONFIG_KEYS, ("tools",), "$.toolConfig")
        tools = config.get("tools", ABSENT)
        if tools is ABSENT:
            return names
        if type(tools) is not list:
            self._type("$.toolConfig.tools", tools, "array")
            return names
        if not tools:
            self._add(
                "list.empty",
                "$.toolConfig.tools",
                'tools is empty: declare the tools the sample uses, or leave "toolConfig" out',
            )
        for index, tool in enumerate(tools):
            path = f"$.toolConfig.tools[{index}]"
            if type(tool) is not dict:
                self._type(path, tool, "object")
                continue
            self._keys(tool, _TOOL_KEYS, ("toolSpec",), path)
            if "toolSpec" in tool:
                self._check_tool_spec(tool["toolSpec"], f"{path}.toolSpec", names)
        return names

    def _check_tool_spec(self, spec: object, path: str, names: set[str]) -> None:
        if type(spec) is not dict:
            self._type(path, spec, "object")
            return
        self._keys(spec, _TOOL_SPEC_KEYS, ("name", "description", "inputSchema"), path)
        name = spec.get("name", ABSENT)
        if type(name) is str:
            if not _TOOL_NAME.fullmatch(name):
                self._add(
                    "tools.spec",
                    f"{path}.name",
                    f"tool name {quote(name)} must be 1 to 64 letters, digits, '_' or '-': "
                    "rename the tool here and in its toolUse blocks",
                )
            if name in names:
                self._add(
                    "tools.duplicate_name",
                    f"{path}.name",
                    f"tool {quote(name)} is declared twice: keep one declaration",
                )
            names.add(name)
        elif name is not ABSENT:
            self._type(f"{path}.name", name, "string")
        if "description" in spec:
            self._check_text(spec["description"], f"{path}.description")
        if "inputSchema" in spec:
            self._check_input_schema(spec["inputSchema"], f"{path}.inputSchema")

    def _check_input_schema(self, schema: object, path: str) -> None:
        if type(schema) is not dict:
            self._type(path, schema, "object")
            return
        self._keys(schema, _INPUT_SCHEMA_KEYS, ("json",), path)
        body = schema.get("json", ABSENT)
        if body is ABSENT:
            return
        if type(body) is not dict:
            self._type(f"{path}.json", body, "object")
        elif "type" not in body:
            self._add(
                "tools.spec",
                f"{path}.json",
                'the input schema has no "type": give it a JSON Schema such as '
                '{"type": "object", "properties": {...}}',
            )

    def _tool_use_id(self, value: dict[str, Any], path: str) -> str | None:
        use_id = value.get("toolUseId", ABSENT)
        if use_id is ABSENT:
            return None
        if type(use_id) is not str:
            self._type(f"{path}.toolUseId", use_id, "string")
            return None
        return use_id

    def _check_tool_use(self, value: object, path: str, sample: SampleState) -> str | None:
        """Checks one toolUse block; returns its id when it has a usable one."""
        if type(value) is not dict:
            self._type(path, value, "object")
            return None
        if len(value) != 3 or not value.keys() <= _TOOL_USE_KEYS:
            self._keys(value, _TOOL_USE_KEYS, ("toolUseId", "name", "input"), path)
        name = value.get("name", ABSENT)
        if type(name) is str:
            if sample.tools is None:
                self._add(
                    "tools.undeclared",
                    f"{path}.name",
                    f"tool {quote(name)} is used but the sample has no toolConfig: declare it "
                    "in toolConfig.tools",
                )
            elif name not in sample.tools:
                self._add(
                    "tools.undeclared",
                    f"{path}.name",
                    f"tool {quote(name)} is not declared in toolConfig.tools: declare it or fix "
                    "the name",
                )
        elif name is not ABSENT:
            self._type(f"{path}.name", name, "string")
        if "input" in value and type(value["input"]) is not dict:
            self._type(f"{path}.input", value["input"], "object")
        use_id = self._tool_use_id(value, path)
        if use_id is None:
            return None
        if not _TOOL_USE_ID.fullmatch(use_id):
            self._add(
                "tools.id",
                f"{path}.toolUseId",
                f"toolUseId {quote(use_id)} must be 1 to 64 letters, digits, '_' or '-'",
            )
        if use_id in sample.tool_use_ids:
            self._add(
                "tools.duplicate_id",
                f"{path}.toolUseId",
                f"toolUseId {quote(use_id)} is used twice in the sample: give each toolUse its "
                "own id",
            )
            return None
        sample.tool_use_ids.add(use_id)
        return use_id

    def _check_tool_result(self, value: object, path: str) -> str | None:
        """Checks one toolResult block; returns the id it answers when it has a usable one."""
        if type(value) is not dict:
            self._type(path, value, "object")
            return None
        if (
            not value.keys() <= _TOOL_RESULT_KEYS
            or "toolUseId" not in value
            or "content" not in value
        ):
            self._keys(value, _TOOL_RESULT_KEYS, ("toolUseId", "content"), path)
        status = value.get("status", ABSENT)
        if status is None:
            self._type(f"{path}.status", status, "string", optional=True)
        elif status is not ABSENT and (
            type(status) is not str or status not in _TOOL_RESULT_STATUS
        ):
            self._add(
                "field.value",
                f"{path}.status",
                f"status {quote(status)} must be 'success' or 'error' (or left out)",
            )
        content = value.get("content", ABSENT)
        if type(content) is list:
            if not content:
                self._add(
                    "list.empty",
                    f"{path}.content",
                    'the tool result is empty: give it a {"text": ...} or {"json": {...}} block',
                )
            for index, block in enumerate(content):
                self._check_result_block(block, f"{path}.content[{index}]")
        elif content is not ABSENT:
            self._type(f"{path}.content", content, "array")
        return self._tool_use_id(value, path)

    def _check_result_block(self, block: object, path: str) -> None:
        if type(block) is not dict:
            self._type(path, block, "object")
            return
        if len(block) != 1 or ("text" not in block and "json" not in block):
            keys = ", ".join(quote(key) for key in block) or "nothing"
            self._add(
                "content.block",
                path,
                f"a tool result block holds exactly one of text or json; this one has {keys}: "
                "keep one per block",
            )
            return
        if "text" in block:
            self._check_text(block["text"], f"{path}.text")
        elif type(block["json"]) is not dict:
            self._type(f"{path}.json", block["json"], "object")


class MediaChecks(FieldChecks):
    """The image, video and document rules, and their source.s3Location."""

    dataset_bucket: str | None

    def _check_media(self, kind: str, value: object, path: str, sample: SampleState) -> None:
        sample.media[kind] = sample.media.get(kind, 0) + 1
        if not sample.media_path:
            sample.media_path = path
        if type(value) is not dict:
            self._type(path, value, "object")
            return
        if len(value) != 2 or not value.keys() <= _MEDIA_KEYS:
            self._keys(value, _MEDIA_KEYS, ("format", "source"), path)
        fmt = value.get("format", ABSENT)
        allowed = MEDIA_FORMATS[kind]
        if type(fmt) is str:
            if fmt not in allowed:
                hint = _FORMAT_HINTS.get(fmt)
                self._add(
                    "media.format",
                    f"{path}.format",
                    f"{kind} format {quote(fmt)} is not accepted; use one of "
                    f"{', '.join(sorted(allowed))}" + (f" (write {quote(hint)})" if hint else ""),
                )
        elif fmt is not ABSENT:
            self._type(f"{path}.format", fmt, "string")
        source = value.get("source", ABSENT)
        if source is ABSENT:
            return
        path += ".source"
        if type(source) is not dict:
            self._type(path, source, "object")
            return
        if len(source) != 1 or "s3Location" not in source:
            self._add(
                "media.source",
                path,
                "media must be referenced as source.s3Location {uri, bucketOwner?} and nothing "
                "else (inline bytes are not accepted for training): upload the file to S3",
            )
            return
        self._check_s3_location(source["s3Location"], f"{path}.s3Location")

    def _check_s3_location(self, location: object, path: str) -> None:
        if type(location) is not dict:
            self._type(path, location, "object")
            return
        if not location.keys() <= _S3_LOCATION_KEYS or "uri" not in location:
            self._keys(location, _S3_LOCATION_KEYS, ("uri",), path)
        owner = location.get("bucketOwner", ABSENT)
        if owner is None:
            self._type(f"{path}.bucketOwner", owner, "string", optional=True)
        elif owner is not ABSENT and (type(owner) is not str or not _ACCOUNT_ID.fullmatch(owner)):
            self._add(
                "media.source",
                f"{path}.bucketOwner",
                "bucketOwner must be the 12-digit account id that owns the bucket, or left out",
            )
        uri = location.get("uri", ABSENT)
        if uri is ABSENT:
            return
        if type(uri) is not str:
            self._type(f"{path}.uri", uri, "string")
            return
        match = _S3_URI.fullmatch(uri)
        if match is None:
            self._add(
                "media.uri",
                f"{path}.uri",
                "the uri must be s3://<bucket>/<key> with a key of letters, digits, '_', '-', "
                "'/' and '.' only: rename the object",
            )
        elif self.dataset_bucket is not None and match.group(1) != self.dataset_bucket:
            self._add(
                "media.bucket",
                f"{path}.uri",
                f"the media is in bucket {quote(match.group(1))} but the dataset is in "
                f"{quote(self.dataset_bucket)}: copy the media into the dataset's bucket",
            )


class ToolAndMediaChecks(ToolChecks, MediaChecks):
    """The toolConfig, toolUse, toolResult and media rules (plain mixins: no extra call on the
    validator's inner loop)."""
