"""The Lambda code asset: `lambdas/` at the top, nothing else, importable on its own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.functions import PROJECT_ROOT
from tests.cloud_assembly import Assembly

HANDLER_MODULES = (
    "validate_dataset",
    "prepare_recipe",
    "register_checkpoint",
    "record_evaluation",
)
# What the Lambda Python runtime provides besides the standard library: boto3 and its
# dependencies. Nothing else (PyYAML in particular) is there at run time.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@pytest.fixture(scope="module")
def asset_dir(assembly: Assembly) -> Path:
    template = assembly.template_json("sandbox", "Training")
    (path,) = {
        r["Metadata"]["aws:asset:path"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    return (assembly.stage_dir("sandbox") / str(path)).resolve()


def source_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }


def test_asset_holds_lambdas_and_nothing_else(asset_dir: Path) -> None:
    assert [p.name for p in asset_dir.iterdir()] == ["lambdas"]
    staged = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()}
    assert "lambdas/__init__.py" in staged
    assert "lambdas/recipe/spec.py" in staged
    assert any(
        name.startswith("lambdas/recipe/templates/") and name.endswith(".yaml") for name in staged
    )
    # Everything under lambdas/ in the repository, minus caches: no file left behind.
    assert staged == {f"lambdas/{name}" for name in source_files(PROJECT_ROOT / "lambdas")}


def test_asset_holds_no_caches_or_hidden_files(asset_dir: Path) -> None:
    for path in asset_dir.rglob("*"):
        assert path.name != "__pycache__", path
        assert not path.name.endswith(".pyc"), path
        assert not path.name.startswith("."), path


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_asset_holds_each_handler(asset_dir: Path, module: str) -> None:
    assert (asset_dir / "lambdas" / f"{module}.py").is_file()


def _runtime_dir(tmp_path: Path) -> Path:
    """A folder holding only the packages the Lambda runtime provides (links to ours)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"{name} is not installed"
        assert spec.origin is not None, f"{name} is not a regular package"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return runtime


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_imports_from_the_asset_alone(asset_dir: Path, tmp_path: Path, module: str) -> None:
    runtime = _runtime_dir(tmp_path)
    # -I -S: no site-packages, no user site, no current folder, no PYTHONPATH. The search path
    # is the standard library, the asset and the runtime's packages, as in Lambda.
    program = (
        "import sys; "
        f"sys.path[:0] = [{str(asset_dir)!r}, {str(runtime)!r}]; "
        f"import lambdas.{module} as m; "
        "assert callable(m.handler); "
        "print(m.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(asset_dir)
