"""`python -m pipeline.rehearsal` (what `make demo` runs): its command line, the summary it prints
and its exit code; the rehearsal's flow is `pipeline.rehearsal.run.rehearse`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.options import Options
from pipeline.rehearsal.run import refused_before_training, rehearse, say
from pipeline.rehearsal.step_types import LAMBDA_INPUT_FORMS


def _error(text: str) -> None:
    sys.stderr.write(f"error: {text}\n")


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share of calls from 0 to below 1")
    return rate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.rehearsal",
        description=(
            "Create the synthesized stage (cdk.out, from `make synth`) in a local AWS endpoint "
            "on 127.0.0.1 and run its pipeline twice: run 1 from the base model, run 2 from run "
            "1's checkpoint; then run 3 from run 2's checkpoint with the other technique, which "
            "must be refused before training. Nothing leaves this machine."
        ),
    )
    defaults = Options()
    parser.add_argument("--stage", default=defaults.stage, help="environment (%(default)s)")
    parser.add_argument("--cdk-out", type=Path, default=defaults.cdk_out, help="cloud assembly")
    parser.add_argument(
        "--dataset", type=Path, default=defaults.dataset, help="JSONL to train on (the sample)"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=defaults.out_dir, help="where the PNG goes (%(default)s)"
    )
    parser.add_argument(
        "--s3-error-rate",
        type=_rate,
        default=0.0,
        metavar="SHARE",
        help="answer this share of S3 calls with 503 SlowDown (e.g. 0.2)",
    )
    parser.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        metavar="SHARE",
        help="answer this share of SageMaker calls with ThrottlingException (e.g. 0.2)",
    )
    parser.add_argument(
        "--fail-training",
        action="store_true",
        help="make the training job fail: the run must end Failed with nothing registered",
    )
    parser.add_argument(
        "--fail-evaluation",
        action="store_true",
        help="make the evaluation job fail: the run must end Failed with nothing registered",
    )
    parser.add_argument(
        "--low-score",
        action="store_true",
        help="score every checkpoint below the demo's gate threshold",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="fault sequence seed")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    parser.add_argument(
        "--lambda-inputs",
        choices=LAMBDA_INPUT_FORMS,
        default=defaults.lambda_inputs,
        help="deliver typed parameters to the Lambda steps as JSON types or as strings "
        "(the service's form is undocumented; the handlers must take both)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every run succeeded, 1 when a run failed or the rehearsal could not run."""
    args = _parser().parse_args(argv)
    options = Options(
        cdk_out=args.cdk_out,
        stage=args.stage,
        dataset=args.dataset,
        out_dir=args.out_dir,
        s3_error_rate=args.s3_error_rate,
        throttle_rate=args.throttle_rate,
        fail_training=args.fail_training,
        fail_evaluation=args.fail_evaluation,
        low_score=args.low_score,
        seed=args.seed,
        plot=not args.no_plot,
        lambda_inputs=args.lambda_inputs,
    )
    if not options.dataset.is_file():
        _error(f"dataset {options.dataset} not found")
        return 1
    try:
        result = rehearse(options)
    except (DefinitionError, ConfigError) as err:
        _error(f"{err}")
        return 1
    faults = result.faults
    if faults is not None and (options.s3_error_rate or options.throttle_rate):
        say(
            f"faults injected: S3 {faults.injected['s3']} of {faults.seen['s3']} calls, "
            f"SageMaker {faults.injected['sagemaker']} of {faults.seen['sagemaker']} calls"
        )
    run_3 = result.other_technique
    refused = run_3 is not None and refused_before_training(run_3)
    say(
        f"{len(result.executions)} run(s) in {result.seconds:.2f} s; {result.registered} registered"
        + ("; run 3 (the other technique) refused before training" if refused else "")
    )
    if run_3 is not None and not refused:
        _error("run 3 continued a LoRA checkpoint with full rank and was not refused")
        return 1
    if result.serving is not None and not result.serving.succeeded:
        _error("serving did not deploy, answer and take down round 2's checkpoint (see above)")
        return 1
    if not result.succeeded:
        _error("a run failed (see its failure reason above)")
        return 1
    return 0
