"""`python -m pipeline lineage`: an environment's checkpoints as a tree, parent to child.

Each checkpoint records what its run started from (`CheckpointRecord.parent`: the base model
or a checkpoint URI); `lineage` nests every checkpoint under the one whose URI it names. Where
the environment tracks experiments, each version's MLflow run is printed beside it
(`pipeline.commands.mlflow_runs`).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdas.evaluation import scorecard_of
from lambdas.registry import CheckpointRecord, list_checkpoints
from pipeline.commands import common, mlflow_runs
from pipeline.commands.aws import Sessions, record_dict, resolve_package
from pipeline.serving_config import DEPLOYED, KEY_SERVING_STATUS

_HELP = "show the checkpoints as a tree, parent to child"
_DESCRIPTION = (
    "Show an environment's checkpoints as a tree: each run under the checkpoint it "
    "continued from, with its technique, steps, final training loss, approval status "
    "(DEPLOYED when it is served on Bedrock) and date, its evaluation score, the change from "
    "its parent's score and its quality gate's verdict. With PACKAGE, only that checkpoint's "
    "ancestors and descendants."
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "lineage", _HELP, _DESCRIPTION)
    parser.add_argument(
        "package", nargs="?", metavar="PACKAGE", help="a model package ARN or version number"
    )
    common.add_env_arguments(parser)
    common.add_aws_arguments(parser)
    mlflow_runs.add_arguments(parser)
    parser.set_defaults(run=run)


def _tree_lines(
    nodes: Sequence[LineageNode],
    indent: str,
    note: Callable[[CheckpointRecord], str] = lambda record: "",
) -> list[str]:
    lines = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        r = node.record
        steps = f"{r.training_steps} steps" if r.training_steps is not None else "? steps"
        loss = f"loss {r.final_loss:.4f}" if r.final_loss is not None else "loss n/a"
        date = r.creation_time.strftime("%Y-%m-%d %H:%M") if r.creation_time else "?"
        served = " DEPLOYED" if is_deployed(r) else ""
        beside = note(r)
        lines.append(
            f"{indent}{'└─' if last else '├─'} v{r.version} {r.approval_status}{served} "
            f"{r.technique} {steps} {loss} {date} {r.checkpoint_uri}"
            + (f"  {beside}" if beside else "")
        )
        if scorecard_of(r.metadata) is not None:
            lines.append(f"{indent}{'   ' if last else '│  '}   {score_text(r)}")
        lines.extend(_tree_lines(node.children, indent + ("   " if last else "│  "), note))
    return lines


def score_text(record: CheckpointRecord) -> str:
    """`score: gen_qa rougeL 0.4301 (+0.02 vs parent 0.4101); gate: passed: ...` (a second line
    under each evaluated version), or `score: not evaluated`."""
    card = scorecard_of(record.metadata)
    if card is None:
        return "score: not evaluated"
    change = (
        f" ({card.change:+.4g} vs parent {card.parent_score:.4g})"
        if card.change is not None and card.parent_score is not None
        else " (no comparable parent score)"
    )
    score = "n/a" if card.score is None else f"{card.score:.4g}"
    gate = f"; gate: {card.verdict}" if card.verdict else ""
    return f"score: {card.task} {card.metric} {score}{change}{gate}"


def run(args: argparse.Namespace) -> int:
    project, env = common.environment(args)
    sessions = Sessions()
    focus = ""
    if args.package:
        account = functools.partial(sessions.account, args.profile, env.region)
        focus = resolve_package(project, args.package, env, account).arn
    session = sessions.connect(args.profile, env)
    records = list_checkpoints(session.client("sagemaker"), env.model_package_group_name)
    roots = lineage(records, focus)
    runs = mlflow_runs.load(
        env,
        session,
        functools.partial(sessions.account, args.profile, env.region),
        links=args.mlflow_links,
    )
    if args.json:
        document: dict[str, Any] = {
            "environment": env.name,
            "model_package_group": env.model_package_group_name,
            "roots": [
                {"started_from": start, "checkpoints": [n.to_dict() for n in nodes]}
                for start, nodes in roots.items()
            ],
        }
        if runs is not None:
            document["mlflow"] = {
                **runs.summary(),
                "runs": {r.model_package_arn: runs.to_dict(runs.for_record(r)) for r in records},
            }
        common.emit_json(document)
        return common.EXIT_OK
    if not roots:
        common.print_text(f"No checkpoints in {env.model_package_group_name} yet.")
        return common.EXIT_OK
    lines = [f"Checkpoints of {env.name} ({env.model_package_group_name}):"]
    for start, nodes in roots.items():
        lines.append(start)
        if runs is None:
            lines.extend(_tree_lines(nodes, ""))
        else:
            lines.extend(_tree_lines(nodes, "", lambda r: runs.note(runs.for_record(r))))
    lines.extend(runs.header() if runs is not None else [])
    common.print_text("\n".join(lines))
    return common.EXIT_OK


def is_deployed(record: CheckpointRecord) -> bool:
    """Whether the serving state machine recorded the checkpoint as deployed on Bedrock."""
    return record.metadata.get(KEY_SERVING_STATUS) == DEPLOYED


@dataclass
class LineageNode:
    """A checkpoint and the checkpoints trained from it (oldest first)."""

    record: CheckpointRecord
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **record_dict(self.record),
            "deployed": is_deployed(self.record),
            "children": [c.to_dict() for c in self.children],
        }


def lineage(records: Sequence[CheckpointRecord], focus: str = "") -> dict[str, list[LineageNode]]:
    """The checkpoints as trees keyed by what their first run started from (the base model,
    or a checkpoint of another group). With `focus` (a package ARN), only its ancestors, itself
    and its descendants are kept."""
    nodes = {r.model_package_arn: LineageNode(r) for r in records}
    by_uri: dict[str, LineageNode] = {}
    for node in sorted(nodes.values(), key=lambda n: n.record.version):
        by_uri.setdefault(node.record.checkpoint_uri, node)
    if focus:
        if focus not in nodes:
            raise common.OperationError(f"{focus} is not a checkpoint of this environment's group")
        keep = {focus}
        current = nodes[focus].record
        while current.parent in by_uri:
            ancestor = by_uri[current.parent].record
            if ancestor.model_package_arn in keep:
                break  # a cycle in recorded parents; the registry should never hold one
            keep.add(ancestor.model_package_arn)
            current = ancestor
        keep.update(arn for arn, node in nodes.items() if _below(node, focus, by_uri))
        nodes = {arn: node for arn, node in nodes.items() if arn in keep}
    roots: dict[str, list[LineageNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: n.record.version):
        parent = by_uri.get(node.record.parent)
        if parent is not None and parent.record.model_package_arn in nodes and parent is not node:
            parent.children.append(node)
        else:
            roots.setdefault(node.record.parent or "(unknown)", []).append(node)
    return roots


def _below(node: LineageNode, focus: str, by_uri: Mapping[str, LineageNode]) -> bool:
    """True when `focus` is an ancestor of `node`."""
    seen: set[str] = set()
    current = by_uri.get(node.record.parent)
    while current is not None and current.record.model_package_arn not in seen:
        if current.record.model_package_arn == focus:
            return True
        seen.add(current.record.model_package_arn)
        current = by_uri.get(current.record.parent)
    return False
