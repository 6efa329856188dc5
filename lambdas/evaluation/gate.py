"""The quality gate: the status a checkpoint is registered with, decided from its score.

Every metric the Nova evaluation recipes report is higher-is-better (ROUGE, BLEU, exact match,
F1 for gen_qa; accuracy, exact_match, deflection for the benchmarks), so the gate is `score >=
GateThreshold`; with `GateRequiresImprovement` the score must also be strictly greater than the
parent's comparable score, and no comparable parent score fails the gate. A failed gate
registers the checkpoint `Rejected` with the reason in its description (CreateModelPackage takes
no ApprovalDescription, and the register step makes no later update) and in its `GateVerdict`
metadata; a passed gate keeps the status the run asked for (PendingManualApproval). The gate
never approves.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.evaluation.inputs import Gate
from lambdas.evaluation.parent import Comparison
from lambdas.registry.metadata import _metadata_text

REJECTED = "Rejected"
NOT_EVALUATED = "not evaluated"
# ApprovalDescription's limit (botocore: ApprovalDescription max 1024).
MAX_DESCRIPTION_CHARS = 1024


def shown(value: float) -> str:
    """A score in a verdict: 6 significant digits (the report keeps every digit)."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class Verdict:
    """The gate's decision: `passed` is None without a gate; `text` is the GateVerdict output;
    `status` the status to register with; `description` the reason a rejection records in the
    package's description ("" if none)."""

    passed: bool | None
    text: str
    status: str
    description: str = ""


def decide(
    gate: Gate | None,
    metric: str,
    value: float,
    comparison: Comparison,
    requested_status: str,
) -> Verdict:
    """Judge `value` of `metric` (the gate's metric when there is a gate)."""
    if gate is None:
        return Verdict(None, f"no gate: {metric} {shown(value)}", requested_status)
    failures: list[str] = []
    passed = [f"{metric} {shown(value)} >= {shown(gate.threshold)}"]
    if value < gate.threshold:
        failures.append(f"{metric} {shown(value)} < threshold {shown(gate.threshold)}")
    if gate.requires_improvement:
        parent = comparison.value(metric)
        if parent is None:
            failures.append(
                f"improvement over the parent required, but no comparable parent score "
                f"({comparison.why_not(metric)})"
            )
        elif not value > parent:
            failures.append(
                f"{metric} {shown(value)} does not beat the parent score {shown(parent)} "
                f"({comparison.source or comparison.parent})"
            )
        else:
            passed.append(f"beats the parent score {shown(parent)}")
    if failures:
        text = "rejected: " + "; ".join(failures)
        description = (
            f"Quality gate failed: {'; '.join(failures)}. Registered Rejected by the run; "
            "approve only with `python -m pipeline approve --override-gate REASON`."
        )
        return Verdict(False, text, REJECTED, description[:MAX_DESCRIPTION_CHARS])
    return Verdict(True, "passed: " + ", ".join(passed), requested_status)


def verdict_entry(text: str) -> str:
    """The verdict as a metadata value: the registry refuses `<`, `;`, parentheses and quotes,
    so the comparisons are spelled out and the rest becomes spaces (at most 256 characters)."""
    return _metadata_text(text.replace(">=", " ge ").replace("<", " lt "))
