"""Evaluation output archives as the Nova evaluation container writes them (NOVA_FACTS 7)."""

from __future__ import annotations

import json
from typing import Any

from tests.lambdas.checkpoint.archives import Member, tar_gz

RUN_NAME = "eval-job-1"
STAMP = "2026-12-03T10-15-30.123456"
# gen_qa's eight metrics with their stderrs, as results.all holds them.
GEN_QA: dict[str, float] = {
    "rouge1": 0.4612,
    "rouge1_stderr": 0.0121,
    "rouge2": 0.2533,
    "rouge2_stderr": 0.0134,
    "rougeL": 0.4301,
    "rougeL_stderr": 0.0118,
    "em": 0.12,
    "em_stderr": 0.0325,
    "qem": 0.14,
    "qem_stderr": 0.0347,
    "f1": 0.5123,
    "f1_stderr": 0.0101,
    "f1_score_quasi": 0.5311,
    "f1_score_quasi_stderr": 0.0099,
    "bleu": 21.734,
    "bleu_stderr": 1.245,
}


def results_json(scores: dict[str, Any] | None = None, **extra: Any) -> bytes:
    return json.dumps({"results": {"all": GEN_QA if scores is None else scores}, **extra}).encode()


def results_member(run: str = RUN_NAME, stamp: str = STAMP, prefix: str = "./") -> str:
    return f"{prefix}{run}/eval_results/results_{stamp}.json"


def eval_archive(*members: Member, scores: dict[str, Any] | None = None) -> bytes:
    """inference_output.jsonl first, then the results, then the details (or `members`)."""
    if not members:
        members = (
            Member("./inference_output.jsonl", b'{"prompt": "q", "inference": "a"}\n' * 500),
            Member(results_member(), results_json(scores)),
            Member(f"./{RUN_NAME}/details/details_gen_qa.parquet", b"PAR1" + bytes(2048)),
        )
    return tar_gz(*members)
