"""The definition cache: a read gives the bytes a build gives, and any change of input builds anew.

Builds here are real SDK builds (offline, like every definition build); a spy around the module's
`_build` counts them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline import definition_cache
from pipeline.definition import build_pipeline, definition_json
from pipeline.definition_cache import (
    REFERENCES,
    DefinitionCacheError,
    cache_key,
    pipeline_definition,
    placeholder,
)
from tests.pipeline.test_definition import ENV

# Values shaped like the CDK tokens that the stack passes.
TOKENS = {name: f"${{Token[TOKEN.{900 + i}]}}" for i, name in enumerate(REFERENCES)}


# A build is deterministic (tests/pipeline/test_offline_sdk.py proves it byte for byte), so the
# SDK runs once per distinct environment in this module: what these tests check is when the
# cache asks for a build and what it keeps, not the build itself.
_REAL_BUILD: Callable[..., str] = definition_cache._build
_BUILT: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _sdk_builds_once_per_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def build_once(env: Any) -> str:
        key = repr(env)
        if key not in _BUILT:
            _BUILT[key] = _REAL_BUILD(env)
        return _BUILT[key]

    monkeypatch.setattr(definition_cache, "_build", build_once)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the environments the cache asked to build from here on."""
    built: list[str] = []
    build_once: Callable[..., str] = definition_cache._build

    def counting_build(env: Any) -> str:
        built.append(env.name)
        return build_once(env)

    monkeypatch.setattr(definition_cache, "_build", counting_build)
    return built


@functools.cache
def _direct_build_text() -> str:
    """What the builder gives when called with TOKENS themselves, bypassing the cache."""
    return definition_json(build_pipeline(env=ENV, **TOKENS))


def _direct_build() -> dict[str, Any]:
    return dict(json.loads(_direct_build_text()))


def test_a_cached_read_equals_a_direct_build_and_skips_the_sdk(
    tmp_path: Path, builds: list[str]
) -> None:
    first = pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)
    second = pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)

    assert builds == [ENV.name]  # the second call read the file
    assert first == second == _direct_build()
    (cached,) = tmp_path.glob("*.json")
    assert cached.name == f"{ENV.name}-{cache_key(ENV)}.json"


def test_every_reference_is_in_place_and_no_placeholder_is_left(tmp_path: Path) -> None:
    text = json.dumps(pipeline_definition(ENV, TOKENS, cache_dir=tmp_path))

    assert "<nova-sft:" not in text
    # The builder carries every reference except the two it only checks (see build_pipeline).
    for name in set(REFERENCES) - {"role_arn", "data_bucket"}:
        assert TOKENS[name] in text, name


def test_without_a_cache_folder_every_call_builds(builds: list[str]) -> None:
    pipeline_definition(ENV, TOKENS, cache_dir=None)
    pipeline_definition(ENV, TOKENS, cache_dir=None)

    assert builds == [ENV.name, ENV.name]


@pytest.mark.parametrize(
    "change",
    [{"training_instance_count": 2}, {"region": "us-west-2"}],
)
def test_a_configuration_change_builds_anew(
    tmp_path: Path, builds: list[str], change: dict[str, Any]
) -> None:
    changed = dataclasses.replace(ENV, **change)
    pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)
    document = pipeline_definition(changed, TOKENS, cache_dir=tmp_path)

    assert cache_key(changed) != cache_key(ENV)
    assert builds == [ENV.name, changed.name]
    assert document != pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)


def test_a_new_build_replaces_the_environments_stale_file_only(tmp_path: Path) -> None:
    stale = tmp_path / f"{ENV.name}-{'0' * 64}.json"
    other_environment = tmp_path / f"{ENV.name}-eu-{'0' * 64}.json"
    unrelated = tmp_path / "notes.json"
    for path in (stale, other_environment, unrelated):
        path.write_text("{}", encoding="utf-8")

    pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{ENV.name}-{cache_key(ENV)}.json", other_environment.name, unrelated.name]
    )


def test_a_source_edit_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = tmp_path / "project"
    for folder in definition_cache.SOURCE_DIRS:
        shutil.copytree(folder, sources / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(definition_cache, "PROJECT_ROOT", sources)
    monkeypatch.setattr(
        definition_cache, "SOURCE_DIRS", (sources / "pipeline", sources / "lambdas")
    )
    before = cache_key(ENV)
    recipe = next((sources / "lambdas" / "recipe" / "templates").glob("*.yaml"))
    recipe.write_text(recipe.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    after_edit = cache_key(ENV)
    (sources / "pipeline" / "__pycache__").mkdir()
    (sources / "pipeline" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")

    assert after_edit != before
    assert cache_key(ENV) == after_edit  # bytecode caches are not sources


def test_an_installed_package_change_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = definition_cache._distributions()
    sdk = [name for name in installed if name.startswith("sagemaker-")]
    assert sdk, "the SageMaker SDK's dist-info folder should be among the installed packages"
    before = cache_key(ENV)
    upgraded = [name.replace(sdk[0], "sagemaker-99.0.0.dist-info") for name in installed]
    monkeypatch.setattr(definition_cache, "_distributions", lambda: upgraded)

    assert cache_key(ENV) != before


def test_a_damaged_file_is_rebuilt_and_replaced(tmp_path: Path, builds: list[str]) -> None:
    expected = pipeline_definition(ENV, TOKENS, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.json")
    cached.write_text('{"Version": "2020-12-01", "Steps": [', encoding="utf-8")

    assert pipeline_definition(ENV, TOKENS, cache_dir=tmp_path) == expected
    assert builds == [ENV.name, ENV.name]
    assert json.loads(cached.read_text(encoding="utf-8"))["Steps"]
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no temporary file left


def test_an_unwritable_folder_still_gives_the_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")

    document = pipeline_definition(ENV, TOKENS, cache_dir=not_a_folder)

    assert document == _direct_build()
    assert f"warning: pipeline definition not cached in {not_a_folder}" in capsys.readouterr().err


def test_references_must_be_exactly_the_builders() -> None:
    missing = {k: v for k, v in TOKENS.items() if k != "kms_key_arn"}
    with pytest.raises(DefinitionCacheError, match="missing or empty: kms_key_arn; unknown: none"):
        pipeline_definition(ENV, missing, cache_dir=None)
    with pytest.raises(DefinitionCacheError, match="missing or empty: data_bucket; unknown: none"):
        pipeline_definition(ENV, {**TOKENS, "data_bucket": ""}, cache_dir=None)
    with pytest.raises(DefinitionCacheError, match="missing or empty: none; unknown: kms_key"):
        pipeline_definition(ENV, {**TOKENS, "kms_key": "x"}, cache_dir=None)


def test_placeholders_do_not_contain_one_another() -> None:
    marks = [placeholder(name) for name in REFERENCES]
    for mark in marks:
        assert [other for other in marks if mark in other] == [mark]
