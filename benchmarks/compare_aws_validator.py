"""Ours beside AWS's sample validator, one defect at a time: where they agree, and where not.

Runs every invalid case of the unit tests (one per rule,
tests/lambdas/dataset/test_validator.py `CASES`) and the known differences below through both
validators, and prints one row per case: the rules ours reports with their severity, and whether
AWS's validator (aws-samples/amazon-nova-samples,
customization/bedrock-finetuning/understanding/dataset_validation/nova_ft_dataset_validator.py, as
for Nova 2 Lite SFT) accepts each line. Use it to check docs/dataset-rules.md after a change on
either side. Dataset-level rules (sample counts, consistency across samples) are ours alone: AWS's
validator judges each line by itself and skips counts for SageMaker.

Run: .venv/bin/python benchmarks/compare_aws_validator.py \\
       --aws-validator /tmp/awsval/nova_ft_dataset_validator.py --aws-python /tmp/awsval/bin/python
(fetch the file into a temporary folder, never into this repository; the interpreter needs
pydantic 2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lambdas.dataset.validator import SEVERITY, validate_lines
from tests.lambdas.dataset.test_validator import (
    CASES,
    assistant,
    image,
    lines,
    sample,
    text,
    tool_use,
    user,
)

# Inputs on which the two are known to differ (docs/dataset-rules.md says why).
DIFFERENCES: dict[str, list[str]] = {
    "null system": lines(sample(system=None)),
    "null toolConfig": lines(sample(toolConfig=None)),
    "missing schemaVersion": lines({"messages": [user(), assistant()]}),
    "unknown top-level key": lines(sample(metadata={"id": 7})),
    "unknown key in a text block": lines(
        sample(user({"text": "Hi", "cachePoint": {}}), assistant())
    ),
    "toolUse without toolConfig": lines(sample(user(text("Where?")), assistant(tool_use()))),
    "Thought: in text": lines(sample(user(text("Thought: first check")), assistant())),
    "[EOS] in text": lines(sample(user(text("done [EOS]")), assistant())),
    "whitespace-only text beside text": lines(sample(user(text("Hi"), text(" ")), assistant())),
    "NaN in a line": [json.dumps(sample())[:-1] + ', "score": NaN}'],
    "non-ASCII media key": lines(
        sample(user(text("x"), image(uri="s3://data-bucket/caf\u00e9.png")), assistant())
    ),
}

# Runs in --aws-python: judges each line as AWS's validator does (blank lines skipped), prints
# {case: ["accept" | "reject: <first message>", ...]}.
_AWS_RUNNER = """
import importlib.util, json, sys, warnings
warnings.simplefilter("ignore")
spec = importlib.util.spec_from_file_location("aws_nova_validator", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
verdicts = {}
for name, lines in json.load(open(sys.argv[2])).items():
    found = []
    for line in lines:
        if not line.strip():
            found.append("skips")
            continue
        try:
            module.ConverseDatasetSample.model_validate(
                json.loads(line), context={"model_name": "lite-2.0"}
            )
            found.append("accept")
        except Exception as error:
            errors = getattr(error, "errors", None)
            text = errors()[0]["msg"] if errors else str(error)
            found.append("reject: " + text.replace("Value error, ", "")[:60])
    verdicts[name] = found
print(json.dumps(verdicts))
"""


def ours(items: list[str], options: dict[str, Any], rule: str) -> list[str]:
    """The rules ours reports for the lines; sample counts only for a case about them (the
    cases are a few lines long, far below any real dataset)."""
    settings: dict[str, Any] = {
        "global_batch_size": 1,
        "reasoning_enabled": None,
        "dataset_bucket": "data-bucket",
    }
    settings.update(options)
    report = validate_lines(items, **settings)
    return sorted(
        f"{found} ({SEVERITY[found]})"
        for found in report.counts_by_rule
        if found == rule or not found.startswith("samples.")
    )


def aws(cases: dict[str, list[str]], validator: Path, python: str) -> dict[str, list[str]]:
    with tempfile.TemporaryDirectory(prefix="compare-aws-") as folder:
        path = Path(folder) / "cases.json"
        path.write_text(json.dumps(cases), encoding="utf-8")
        done = subprocess.run(
            [python, "-c", _AWS_RUNNER, str(validator), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"AWS's validator did not run ({last}); see --help")
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws-validator", type=Path, required=True)
    parser.add_argument("--aws-python", default=sys.executable)
    args = parser.parse_args()
    if not args.aws_validator.is_file():
        raise SystemExit(f"--aws-validator {args.aws_validator}: no such file")

    cases = {f"rule {case.rule}": (case.invalid, case.options, case.rule) for case in CASES}
    cases.update({name: (items, {}, "") for name, items in DIFFERENCES.items()})
    every_line = {name: items for name, (items, _, _) in cases.items()}
    theirs = aws(every_line, args.aws_validator, args.aws_python)
    agree = 0
    for name, (items, options, rule) in cases.items():
        found = ours(items, options, rule)
        stops = any(rule.endswith("(error)") for rule in found)
        rejects = any(verdict.startswith("reject") for verdict in theirs[name])
        same = stops == rejects
        agree += same
        mark = "same" if same else "DIFF"
        if not same and rule.startswith(("samples.", "parts.", "media.mixed", "reasoning.enabled")):
            mark = "DIFF (across samples: ours alone)"
        print(f"{mark}  {name}\n      ours: {', '.join(found) or 'passes'}")
        print(f"      AWS:  {'; '.join(sorted(set(theirs[name])))}")
    print(f"{agree} of {len(cases)} cases: both stop, or both let the run go on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
