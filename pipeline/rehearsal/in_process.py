"""The deployed code, run in this process: the local endpoint's credentials in the environment,
each Lambda handler imported by its deployed name and run with its function's environment, after
checking that the synthesized asset holds exactly the code in lambdas/.
"""

from __future__ import annotations

import contextlib
import filecmp
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.options import ROOT
from pipeline.rehearsal.resources import DeployedFunction
from pipeline.rehearsal.step_types import LambdaHandler


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set while the block runs; the previous ones back after."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def local_credentials(url: str, region: str) -> dict[str, str]:
    """The environment that points every AWS client of this process at the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_SESSION_TOKEN": "rehearsal",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "8",
    }


def cold_start() -> None:
    """Drop what the Lambda modules cached (their boto3 clients): a new container per rehearsal.

    Handlers run in this process, so a client cached by an earlier rehearsal would still point
    at that rehearsal's endpoint, which is gone.
    """
    for name, module in list(sys.modules.items()):
        if name == "lambdas" or name.startswith("lambdas."):
            for value in vars(module).values():
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def require_current_asset(asset_dir: Path) -> None:
    """The Lambda asset in cdk.out must hold exactly the code in lambdas/, else cdk.out is stale.

    Handlers are imported from this checkout, so this is what makes them the deployed code.
    """
    stale: list[str] = []
    pending = [
        ("", filecmp.dircmp(asset_dir / "lambdas", ROOT / "lambdas", ignore=["__pycache__"]))
    ]
    while pending:  # dircmp compares one level; its subdirs (recipes/) hold compared pairs too
        prefix, comparison = pending.pop()
        different = comparison.diff_files + comparison.left_only + comparison.right_only
        stale += [prefix + name for name in different]
        pending += [(f"{prefix}{name}/", sub) for name, sub in comparison.subdirs.items()]
    if stale:
        raise DefinitionError(
            f"the Lambda asset {asset_dir} differs from lambdas/ ({', '.join(stale)}): "
            "run `make synth` again"
        )


def load_handler(function: DeployedFunction) -> LambdaHandler:
    """The deployed function's handler, imported by its dotted name and run in process with the
    function's environment set (check its asset with `require_current_asset` first)."""
    module_name, _, attribute = function.handler.rpartition(".")
    handler: LambdaHandler = getattr(importlib.import_module(module_name), attribute)

    def call(event: dict[str, Any], context: Any) -> Any:
        with environment(function.environment):
            return handler(event, context)

    return call
