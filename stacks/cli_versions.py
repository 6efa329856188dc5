"""The npm CLI versions the toolchain installs, read from package.json and its lockfile.

The toolchain's self-mutation step installs the `aws-cdk` CLI and its asset publishing steps the
`cdk-assets` CLI. Unpinned, CDK Pipelines installs whatever is newest on the day; pinned here,
they are the versions a developer gets from `npm ci`, and a version bump is one reviewed change
of package.json and package-lock.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_CLI_PACKAGE = "aws-cdk"
CDK_ASSETS_PACKAGE = "cdk-assets"
_EXACT = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


class CliVersionError(ValueError):
    """package.json or its lockfile does not pin a CLI exactly; the message says what to fix."""


@dataclass(frozen=True)
class CliVersions:
    """Exact versions: `cdk_cli` of the `aws-cdk` package, `cdk_assets` of `cdk-assets`."""

    cdk_cli: str
    cdk_assets: str


def read_cli_versions(root: Path = PROJECT_ROOT) -> CliVersions:
    """The pinned versions in `root`/package.json, checked against `root`/package-lock.json.

    Each package must be a devDependency with an exact version (no range) that the lockfile
    installs; CliVersionError names the package and the command that fixes it otherwise.
    """
    manifest = _read_json(root / "package.json")
    lock = _read_json(root / "package-lock.json")
    return CliVersions(
        cdk_cli=_pinned(CDK_CLI_PACKAGE, manifest, lock),
        cdk_assets=_pinned(CDK_ASSETS_PACKAGE, manifest, lock),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliVersionError(f"{path} not found: run from the project's root") from None
    except json.JSONDecodeError as err:
        raise CliVersionError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise CliVersionError(f"{path} must hold a JSON object")
    return document


def _pinned(package: str, manifest: dict[str, Any], lock: dict[str, Any]) -> str:
    fix = f"pin it with `npm install --save-dev --save-exact {package}@<version>`"
    version = (manifest.get("devDependencies") or {}).get(package)
    if version is None:
        raise CliVersionError(f"package.json has no devDependency {package!r}: {fix}")
    if not isinstance(version, str) or not _EXACT.match(version):
        raise CliVersionError(
            f"package.json pins {package!r} as {version!r}, not an exact version: {fix}"
        )
    locked = (lock.get("packages") or {}).get(f"node_modules/{package}", {}).get("version")
    if locked != version:
        raise CliVersionError(
            f"package-lock.json installs {package!r} {locked!r}, but package.json pins "
            f"{version!r}: run `npm install` and commit both files"
        )
    return version
