"""The recipe YAML subset reader and writer (lambdas/recipe/yaml_subset.py). No AWS."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.recipe.yaml_subset import (
    YamlSubsetError,
    emit_yaml_subset,
    format_float,
    parse_yaml_subset,
)
from tests.lambdas.recipe.helpers import typed

# -- the YAML subset ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-5, "1.0e-05"),
        (1e-6, "1.0e-06"),
        (2.5e-7, "2.5e-07"),
        (64.0, "64.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (0.95, "0.95"),
        (1e16, "1.0e+16"),
        (1.5e300, "1.5e+300"),
        (123456.789, "123456.789"),
    ],
)
def test_floats_are_written_so_yaml_1_1_reads_them_as_floats(value: float, text: str) -> None:
    assert format_float(value) == text
    loaded = yaml.safe_load(f"x: {text}")["x"]
    assert isinstance(loaded, float)
    assert loaded == value
    assert math.copysign(1.0, loaded) == math.copysign(1.0, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_cannot_be_written(value: float) -> None:
    with pytest.raises(ValueError, match="only finite numbers"):
        format_float(value)


def test_emitter_escapes_what_a_quoted_string_needs() -> None:
    tree = {"a": 'say "hi" \\ now', "b": "tab\there", "c": "caf\u00e9 \U0001f600", "d": ""}
    text = emit_yaml_subset(tree)
    assert text.isascii()
    assert typed(yaml.safe_load(text)) == typed(tree)
    assert typed(parse_yaml_subset(text)) == typed(tree)


@pytest.mark.parametrize(
    "tree",
    [{"bad key": 1}, {"on": 1}, {"a": None}, {"a": [1]}, {"a": "\ud800"}, {"a": math.nan}],
)
def test_emitter_refuses_what_the_subset_cannot_hold(tree: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"recipe|YAML|finite"):
        emit_yaml_subset(tree)


_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda key: key not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
)
_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_trees = st.recursive(
    _scalars,
    lambda children: st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
).filter(lambda tree: isinstance(tree, dict) and bool(tree))


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_emitted_yaml_reads_back_the_same_under_pyyaml_and_the_subset_reader(
    tree: dict[str, Any],
) -> None:
    text = emit_yaml_subset(tree)
    assert typed(yaml.safe_load(text)) == typed(tree)
    assert typed(parse_yaml_subset(text)) == typed(tree)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('run:\n\tname: "x"\n', 2, "tabs are not allowed"),
        ("run:\n  - 1\n", 2, "expected 'key: value'"),
        ("name: plain text\n", 1, "unsupported value 'plain text'"),
        ("name: 'single'\n", 1, "unsupported value"),
        ("name: null\n", 1, "unsupported value 'null'"),
        ("name: ~\n", 1, "unsupported value '~'"),
        ("lr: 1e-05\n", 1, "unsupported value '1e-05'"),
        ("k: 010\n", 1, "unsupported value '010'"),
        ("k: 1_000\n", 1, "unsupported value '1_000'"),
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("run:\nother: 1\n", 1, "'run' has no value"),
        ("run:\n", 1, "'run' has no value"),
        ('run:\n    name: "x"\n', 2, "indentation does not match"),
        ("run:\n  a: 1\n   b: 2\n", 3, "indentation does not match"),
        (" a: 1\n", 1, "indentation does not match"),
        ("on: 1\n", 1, "would be read as a boolean"),
        ('a: "open\n', 1, "not closed"),
        ('a: "bad \\q escape"\n', 1, "unsupported escape \\q"),
        ('a: "\\ud800"\n', 1, "is not a character"),
        ('a: "x" trailing\n', 1, "unexpected 'trailing'"),
        ("a: &anchor 1\n", 1, "unsupported value"),
        ("a:b\n", 1, "expected 'key: value'"),
    ],
)
def test_reader_refuses_text_outside_the_subset(text: str, line: int, reason: str) -> None:
    with pytest.raises(YamlSubsetError) as caught:
        parse_yaml_subset(text, source="t.yaml")
    assert str(caught.value).startswith(f"t.yaml line {line}: ")
    assert reason in str(caught.value)


def test_reader_accepts_comments_blank_lines_and_crlf() -> None:
    text = '# head\r\nrun:  # section\r\n\r\n  name: "x"  # trailing\r\n  m: -3\r\n  f: 2.50\r\n'
    assert typed(parse_yaml_subset(text)) == typed({"run": {"name": "x", "m": -3, "f": 2.5}})
    assert typed(parse_yaml_subset(text)) == typed(yaml.safe_load(text))


def test_reader_refuses_an_empty_document() -> None:
    with pytest.raises(YamlSubsetError, match="holds no mapping"):
        parse_yaml_subset("# only a comment\n", source="t.yaml")
