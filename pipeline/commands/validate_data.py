"""`python -m pipeline validate-data`: check a dataset on this machine before a run, with the
validator the pipeline's ValidateData step runs (`lambdas.dataset`).

A local file is read in chunks here; an s3:// dataset is streamed by the step's own reader
(`lambdas.validate_dataset.validate_s3_dataset`). Exit 0 when the data has no error (warnings
are printed), 1 when it has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.commands import common
from pipeline.commands.aws import make_session

_HELP = "check a bedrock-conversation-2024 dataset before a run"
_DESCRIPTION = (
    "Check a training dataset (JSONL, bedrock-conversation-2024) with the same "
    "validator the pipeline's ValidateData step runs: every sample's schema, roles, "
    "content blocks, reserved strings, tools and media, and the dataset's size and "
    "consistency. Each finding names the line, the JSON path, the rule and the fix, and "
    "is an error (the run would fail) or a warning (legal but suspicious). Exit 0 when "
    "there is no error (warnings are printed), 1 when there is one, 2 on a usage error."
)
_EPILOG = (
    "Examples: python -m pipeline validate-data train.jsonl --global-batch-size 64; "
    "python -m pipeline validate-data questions.jsonl --format gen_qa (evaluation data)"
)
# The dataset formats: training and validation data, or the evaluation data (EvaluationTask
# gen_qa, lambdas/dataset/gen_qa.py).
FORMATS = ("converse", "gen_qa")


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "validate-data", _HELP, _DESCRIPTION, epilog=_EPILOG)
    parser.add_argument(
        "source", metavar="FILE_OR_S3_URI", help="a local .jsonl file, or s3://bucket/key"
    )
    parser.add_argument(
        "--global-batch-size",
        type=_positive,
        default=32,
        metavar="N",
        help="the run's GlobalBatchSize: the data needs at least this many samples (32)",
    )
    parser.add_argument(
        "--reasoning",
        choices=("true", "false"),
        help="the run's ReasoningEnabled: true requires reasoningContent in every sample, false "
        "forbids it (default: only require it to be used consistently)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=FORMATS[0],
        help="converse: training or validation data (bedrock-conversation-2024, the default); "
        "gen_qa: evaluation data ({query, response} lines)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat every warning as an error (exit 1 on any finding)",
    )
    parser.add_argument(
        "--show", type=_positive, default=20, metavar="N", help="findings to print (20)"
    )
    parser.add_argument("--profile", metavar="NAME", help="AWS profile for an s3:// dataset")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _data_format(args: argparse.Namespace) -> Any:
    if getattr(args, "format", FORMATS[0]) != "gen_qa":
        return None
    from lambdas.dataset.gen_qa import GenQaFormat

    return GenQaFormat


def run(args: argparse.Namespace) -> int:
    reasoning = None if args.reasoning is None else args.reasoning == "true"
    data_format = _data_format(args)
    if args.source.startswith("s3://"):
        from lambdas.validate_dataset import DatasetAccessError, validate_s3_dataset

        s3 = make_session(args.profile, None).client("s3")
        try:
            report = validate_s3_dataset(
                s3,
                args.source,
                global_batch_size=args.global_batch_size,
                reasoning_enabled=reasoning,
                strict=args.strict,
                data_format=data_format,
            )
        except DatasetAccessError as error:
            raise common.OperationError(str(error)) from None
        except ValueError as error:
            raise common.UsageError(str(error)) from None
    else:
        report = validate_local_file(
            Path(args.source),
            global_batch_size=args.global_batch_size,
            reasoning_enabled=reasoning,
            max_findings=1000,
            strict=args.strict,
            data_format=data_format,
        )
    if args.json:
        common.emit_json({"data": args.source, **report.to_dict()})
    else:
        common.print_text("\n".join(_report_lines(report, args.show)))
    return common.EXIT_OK if report.ok else common.EXIT_FAILED


def _report_lines(report: Any, show: int) -> list[str]:
    """The headline, counts by rule (errors, then warnings), then the errors and the warnings
    found first, at most `show` of each."""
    if report.clean:
        return [f"valid: {report.samples} samples, no findings"]
    verdict = "valid" if report.ok else "invalid"
    lines = [
        f"{verdict}: {report.errors} error(s), {report.warnings} warning(s) in "
        f"{report.samples} samples"
    ]
    for severity in ("error", "warning"):
        counts = report.counts_by_severity(severity)
        if not counts:
            continue
        found = [f for f in report.findings if f.severity == severity]
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        lines.append(f"{severity}s by rule:")
        lines.extend(f"  {rule}: {count}" for rule, count in ranked)
        lines.append(f"{severity}s:")
        lines.extend(f"  {finding.describe(with_source=False)}" for finding in found[:show])
        rest = total - min(show, len(found))
        if rest > 0:
            lines.append(f"  ... and {rest} more (--show N, or --json for the full report)")
    return lines


def validate_local_file(
    path: Path,
    *,
    global_batch_size: int,
    reasoning_enabled: bool | None,
    max_findings: int,
    strict: bool = False,
    data_format: Any = None,
) -> Any:
    """Validate a local JSONL file with the pipeline's own validator; returns its Report.

    `strict` records every warning as an error; `data_format` as for `Validator`."""
    from lambdas.dataset.validator import CHUNK_BYTES, Validator

    validator = Validator(
        global_batch_size=global_batch_size,
        reasoning_enabled=reasoning_enabled,
        max_findings=max_findings,
        strict=strict,
        data_format=data_format,
    )
    try:
        with path.open("rb") as handle:
            validator.feed_chunks(iter(lambda: handle.read(CHUNK_BYTES), b""), source=str(path))
    except FileNotFoundError:
        raise common.InputError(f"{path} not found: give a .jsonl file or an s3:// URI") from None
    except IsADirectoryError:
        raise common.InputError(f"{path} is a folder: give a .jsonl file") from None
    except OSError as error:
        raise common.OperationError(f"cannot read {path}: {error}") from None
    return validator.finish()
