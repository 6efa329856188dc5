"""A strict reader and a deterministic writer for the YAML subset of the recipe templates.

`parse_yaml_subset(text)` / `emit_yaml_subset(tree)`: nested mappings of double-quoted strings,
integers, floats with a decimal point, true/false and `{}`. Lambda has no PyYAML, and this subset
reads the same under PyYAML, OmegaConf and any YAML 1.2 loader
(docs/decisions/0002-recipe-templates.md; why it is kept: docs/decisions/0016-recipe-yaml.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# Shown text is cut so that one absurd line cannot flood the error message.
_SHOWN_CHARS = 80

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:[ ]+(.*))?")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
# The decimal point and the signed exponent are what YAML 1.1 (PyYAML) needs to see a float.
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+(?:[eE][-+][0-9]+)?")
# Keys a YAML 1.1 loader would read as booleans or null rather than text.
_RESERVED_KEYS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class YamlSubsetError(ValueError):
    """Text outside the recipe YAML subset; the message names the source and the line."""


def format_float(value: float) -> str:
    """A float as YAML every loader reads back as the same float: always a decimal point and a
    signed exponent (1e-05 -> 1.0e-05, which PyYAML would otherwise read as a string)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written to a recipe: only finite numbers")
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if not exponent:
        return mantissa
    sign = exponent[0] if exponent[0] in "+-" else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('+-')}"


def _quote(text: str) -> str:
    parts = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            parts.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            parts.append(char)
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{text!r} holds a lone surrogate and cannot be written as YAML")
        elif code <= 0xFFFF:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    parts.append('"')
    return "".join(parts)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return _quote(value)
    raise ValueError(f"{value!r} is not a recipe scalar (text, integer, float or boolean)")


def emit_yaml_subset(tree: Mapping[str, Any]) -> str:
    """Nested mappings of scalars as YAML in the subset, keys in the mapping's order.

    Strings are double-quoted (ASCII, escaped), floats carry a decimal point and a signed
    exponent, an empty mapping is `{}`. ValueError for anything else.
    """
    lines: list[str] = []

    def emit(mapping: Mapping[str, Any], indent: str) -> None:
        for key, value in mapping.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key) or key.lower() in _RESERVED_KEYS:
                raise ValueError(f"{key!r} cannot be a recipe key: use letters, digits and _")
            if isinstance(value, Mapping):
                if value:
                    lines.append(f"{indent}{key}:")
                    emit(value, indent + "  ")
                else:
                    lines.append(f"{indent}{key}: {{}}")
            else:
                lines.append(f"{indent}{key}: {_scalar(value)}")

    emit(tree, "")
    return "".join(line + "\n" for line in lines)


def _unquote(text: str, fail: Any) -> tuple[str, str]:
    """Read a double-quoted string at the start of `text`; returns it and what follows."""
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(out), text[index + 1 :]
        if char == "\\":
            escape = text[index + 1 : index + 2]
            if escape in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[escape])
                index += 2
                continue
            width = _HEX_ESCAPES.get(escape)
            digits = text[index + 2 : index + 2 + width] if width else ""
            if not width or len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise fail(f"unsupported escape \\{escape} in a quoted string")
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise fail(f"escape \\{escape}{digits} is not a character")
            out.append(chr(code))
            index += 2 + width
            continue
        if not char.isprintable():
            raise fail("a quoted string holds a control character: escape it")
        out.append(char)
        index += 1
    raise fail("a quoted string is not closed on its line")


def _value(text: str, fail: Any) -> object:
    """One inline value ("text", {}, true, false, an integer, a float), then an optional comment."""
    if text.startswith('"'):
        value, rest = _unquote(text, fail)
        if rest.strip() and not re.fullmatch(r"[ ]+#.*", rest):
            raise fail(f"unexpected {rest.strip()!r} after a quoted string")
        return value
    scalar = re.split(r"[ ]+#", text, maxsplit=1)[0].strip()
    if scalar == "{}":
        return {}
    if scalar in ("true", "false"):
        return scalar == "true"
    if _INT.fullmatch(scalar):
        return int(scalar)
    if _FLOAT.fullmatch(scalar):
        return float(scalar)
    raise fail(
        f"unsupported value {scalar!r}: write text in double quotes, integers as digits, "
        "floats with a decimal point (1.0e-05), true/false, or {} for an empty mapping"
    )


def parse_yaml_subset(text: str, *, source: str = "recipe") -> dict[str, Any]:
    """Read YAML in the subset that `emit_yaml_subset` writes, strictly.

    Accepts comment lines, blank lines, and mappings indented by two spaces per level whose
    values are double-quoted strings, integers, floats with a decimal point, true/false or `{}`.
    Anything else (tabs, lists, unquoted text, null, anchors, duplicate keys, a key with no
    value) raises YamlSubsetError naming `source` and the line, so that every file it accepts
    reads the same under PyYAML.
    """
    root: dict[str, Any] = {}
    # Open mappings, innermost last: (indent of their keys, mapping, its key, the key's line).
    stack: list[tuple[int, dict[str, Any], str, int]] = [(0, root, "", 0)]
    lineno = 0

    def failure(message: str, line: int | None = None) -> YamlSubsetError:
        return YamlSubsetError(f"{source} line {line or lineno}: {message}")

    def close(entry: tuple[int, dict[str, Any], str, int]) -> None:
        if not entry[1] and entry[2]:
            raise failure(f"{entry[2]!r} has no value: write '{entry[2]}: {{}}'", entry[3])

    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if "\t" in line:
            raise failure("tabs are not allowed: indent with two spaces")
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        indent = len(line) - len(content)
        while stack[-1][0] > indent:
            close(stack.pop())
        if stack[-1][0] != indent:
            raise failure("indentation does not match any open mapping (two spaces per level)")
        mapping = stack[-1][1]
        match = _LINE.fullmatch(content)
        if match is None:
            raise failure(f"expected 'key: value', got {content[:_SHOWN_CHARS]!r}")
        key, rest = match.group(1), match.group(2)
        if key.lower() in _RESERVED_KEYS:
            raise failure(f"key {key!r} would be read as a boolean or null by YAML 1.1 loaders")
        if key in mapping:
            raise failure(f"duplicate key {key!r}")
        if rest is None or not rest.strip() or rest.startswith("#"):
            child: dict[str, Any] = {}
            mapping[key] = child
            stack.append((indent + 2, child, key, lineno))
        else:
            mapping[key] = _value(rest, failure)
    for entry in reversed(stack):
        close(entry)
    if not root:
        raise YamlSubsetError(f"{source} holds no mapping")
    return root
