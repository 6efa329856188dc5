"""The toolchain's CLI pins come from package.json and must match its lockfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stacks.cli_versions import PROJECT_ROOT, CliVersionError, CliVersions, read_cli_versions


def write(root: Path, pins: dict[str, Any], locked: dict[str, str]) -> Path:
    (root / "package.json").write_text(json.dumps({"devDependencies": pins}), encoding="utf-8")
    packages = {f"node_modules/{name}": {"version": v} for name, v in locked.items()}
    lock = {"lockfileVersion": 3, "packages": {"": {}, **packages}}
    (root / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    return root


def test_exact_pins_that_the_lockfile_installs_are_read(tmp_path: Path) -> None:
    pins = {"aws-cdk": "2.1148.1", "cdk-assets": "4.7.3"}
    assert read_cli_versions(write(tmp_path, pins, pins)) == CliVersions("2.1148.1", "4.7.3")


def test_a_missing_pin_names_the_package_and_the_fix(tmp_path: Path) -> None:
    write(tmp_path, {"aws-cdk": "2.1148.1"}, {"aws-cdk": "2.1148.1"})
    with pytest.raises(CliVersionError, match="no devDependency 'cdk-assets'") as raised:
        read_cli_versions(tmp_path)
    assert "npm install --save-dev --save-exact cdk-assets@<version>" in str(raised.value)


def test_a_range_is_not_a_pin(tmp_path: Path) -> None:
    pins = {"aws-cdk": "^2.1148.1", "cdk-assets": "4.7.3"}
    write(tmp_path, pins, {"aws-cdk": "2.1148.1", "cdk-assets": "4.7.3"})
    with pytest.raises(CliVersionError, match=r"pins 'aws-cdk' as '\^2\.1148\.1', not an exact"):
        read_cli_versions(tmp_path)


def test_a_lockfile_that_installs_another_version_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"aws-cdk": "2.1148.1", "cdk-assets": "4.7.3"},
        {"aws-cdk": "2.1148.1", "cdk-assets": "4.4.13"},
    )
    with pytest.raises(
        CliVersionError, match=r"installs 'cdk-assets' '4\.4\.13'.*run `npm install`"
    ):
        read_cli_versions(tmp_path)


def test_a_missing_package_json_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(CliVersionError, match=r"package\.json not found: run from the project"):
        read_cli_versions(tmp_path)


def test_the_repository_pins_each_cli_exactly_as_its_lockfile_installs_it() -> None:
    # Raises CliVersionError, naming the package and the fix, if a pin is missing or a range.
    versions = read_cli_versions()
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text("utf-8"))
    pinned = {"aws-cdk": versions.cdk_cli, "cdk-assets": versions.cdk_assets}
    assert {name: lock["packages"][f"node_modules/{name}"]["version"] for name in pinned} == pinned
