"""The pipeline definition as a synth input: built once per change of its inputs, then reused.

Building a definition imports the SageMaker Python SDK and runs its request building: about
5 s for the app's four environments, a third of a `cdk synth`. What the builder returns depends
only on the environment's configuration, the project's code (pipeline/ and lambdas/), the
installed packages and the Python version. The stack's references (roles, function ARNs, buckets,
key) go in as placeholders and are swapped for the real values (CDK tokens) afterwards. So
`pipeline_definition` keeps each built JSON in a folder, named by a hash of all those inputs, and
a synth whose inputs did not change reads it there and never imports the SDK.

The hash covers every file under pipeline/ and lambdas/ and every installed distribution's name
and version, so an edit or an upgrade builds afresh; a build and a read give the same bytes
(tests/pipeline/test_definition_cache.py). docs/decisions/0010-synth-time.md explains the choice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import EnvironmentConfig
from pipeline.definition import build_pipeline, definition_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The CDK context key that names the cache folder, or "false" to build on every synth.
DEFINITION_CACHE_CONTEXT = "nova-sft:definition-cache"
# Where `cdk synth` keeps built definitions by default (`make clean` removes it).
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".cache" / "pipeline-definitions"
# The code the builder runs, besides the installed packages.
SOURCE_DIRS = (PROJECT_ROOT / "pipeline", PROJECT_ROOT / "lambdas")
# `build_pipeline`'s references to deployed resources: the stack passes CDK tokens for them.
REFERENCES = (
    "role_arn",
    "execution_role_arn",
    "validate_function_arn",
    "prepare_function_arn",
    "register_function_arn",
    "prepare_evaluation_function_arn",
    "artifacts_bucket",
    "data_bucket",
    "kms_key_arn",
)
# The evaluate-only pipeline's references (`pipeline.evaluate_pipeline.build_evaluate_pipeline`).
EVALUATE_REFERENCES = (
    "execution_role_arn",
    "validate_function_arn",
    "prepare_evaluation_function_arn",
    "record_evaluation_function_arn",
    "artifacts_bucket",
    "kms_key_arn",
)
# The tracking server's ARN: a reference only where the environment tracks experiments.
TRACKING_REFERENCE = "tracking_arn"
# Bump when the cached file's meaning changes.
_FORMAT = "nova-sft-definition/1"


class DefinitionCacheError(ValueError):
    """`pipeline_definition` was called with missing or unknown references."""


def placeholder(reference: str) -> str:
    """The string that stands for `reference` in a built definition."""
    return f"<nova-sft:{reference}>"


def pipeline_definition(
    env: EnvironmentConfig, references: Mapping[str, str], *, cache_dir: Path | None
) -> dict[str, Any]:
    """The environment's pipeline definition as a JSON document, with `references` in place.

    `references` maps each name in `REFERENCES` to its value (a CDK token or a real ARN or name),
    and `tracking_arn` too when `env.tracking_enabled`; DefinitionCacheError names any that is
    missing, empty or unknown.
    With `cache_dir`, a definition built earlier from the same inputs is read from there, and a
    new build is written there; with None, it is always built.
    """
    return _cached(env, references, cache_dir, names=_references(env), stem=env.name, build=_build)


def evaluate_pipeline_definition(
    env: EnvironmentConfig, references: Mapping[str, str], *, cache_dir: Path | None
) -> dict[str, Any]:
    """The environment's evaluate-only pipeline definition (`pipeline.evaluate_pipeline`), with
    `references` (each name in `EVALUATE_REFERENCES`) in place; cached like
    `pipeline_definition`, in a file of its own."""
    return _cached(
        env,
        references,
        cache_dir,
        names=EVALUATE_REFERENCES,
        stem=f"{env.name}-evaluate",
        build=_build_evaluate,
    )


def _cached(
    env: EnvironmentConfig,
    references: Mapping[str, str],
    cache_dir: Path | None,
    *,
    names: tuple[str, ...],
    stem: str,
    build: Callable[[EnvironmentConfig], str],
) -> dict[str, Any]:
    unknown = sorted(set(references) - set(names))
    missing = [name for name in names if not isinstance(references.get(name), str)]
    missing += [name for name in names if references.get(name) == ""]
    if unknown or missing:
        raise DefinitionCacheError(
            f"the {stem} pipeline definition needs exactly the references {', '.join(names)}; "
            f"missing or empty: {', '.join(missing) or 'none'}; "
            f"unknown: {', '.join(unknown) or 'none'}"
        )
    path = cache_dir / f"{stem}-{cache_key(env)}.json" if cache_dir is not None else None
    document = _read(path) if path is not None else None
    if document is None:
        text = build(env)
        if path is not None:
            _write(path, stem, text)
        document = json.loads(text)
    return dict(_substitute(document, {placeholder(n): references[n] for n in names}))


def _references(env: EnvironmentConfig) -> tuple[str, ...]:
    return (*REFERENCES, TRACKING_REFERENCE) if env.tracking_enabled else REFERENCES


def cache_key(env: EnvironmentConfig) -> str:
    """A hash of everything a built definition depends on (module docstring)."""
    digest = hashlib.sha256()
    for part in (_FORMAT, sys.version, _configuration(env), *_distributions()):
        digest.update(part.encode("utf-8") + b"\0")
    for path in _source_files():
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _configuration(env: EnvironmentConfig) -> str:
    return json.dumps(dataclasses.asdict(env), sort_keys=True)


def _distributions() -> list[str]:
    # Installed distributions leave a `<name>-<version>.dist-info` folder in site-packages:
    # listing them is a millisecond, where importlib.metadata takes a quarter of a second.
    found: set[str] = set()
    for key in ("purelib", "platlib"):
        folder = Path(sysconfig.get_paths()[key])
        if folder.is_dir():
            found.update(p for p in os.listdir(folder) if p.endswith((".dist-info", ".egg-info")))
    return sorted(found)


def _source_files() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def _build(env: EnvironmentConfig) -> str:
    references = {name: placeholder(name) for name in _references(env)}
    return definition_json(build_pipeline(env=env, **references))


def _build_evaluate(env: EnvironmentConfig) -> str:
    from pipeline.evaluate_pipeline import build_evaluate_pipeline

    references = {name: placeholder(name) for name in EVALUATE_REFERENCES}
    return definition_json(build_evaluate_pipeline(env=env, **references))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, unreadable or damaged: build afresh
    return document if isinstance(document, dict) else None


def _write(path: Path, stem: str, text: str) -> None:
    """Write atomically: a concurrent synth reads either nothing or the whole file."""
    cache_dir = path.parent
    temporary: Path | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=cache_dir, suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(text)
        os.replace(temporary, path)
        # Earlier builds of this environment are stale now: one file per environment remains.
        stale = re.compile(re.escape(stem) + r"-[0-9a-f]{64}\.json")
        for other in cache_dir.iterdir():
            if other != path and stale.fullmatch(other.name):
                other.unlink(missing_ok=True)
    except OSError as error:
        # The definition is built and correct; only the next synth loses time.
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        sys.stderr.write(f"warning: pipeline definition not cached in {cache_dir}: {error}\n")


def _substitute(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_substitute(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, replacements) for key, item in value.items()}
    return value
