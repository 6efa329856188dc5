"""Rehearse serving: approve a checkpoint, serve it on the stand-in Bedrock, reject it again.

`make demo` calls `rehearse_serving` after the training rounds. It approves round 2's checkpoint
with `python -m pipeline approve`, builds the `SageMaker Model Package State Change` event that
SageMaker would send, checks it against the deployed rule's pattern (with the matcher moto's
EventBridge routes events by: its TestEventPattern is not implemented), and runs the deployed
serving state machine (its definition as created from cdk.out) with that event as input. Then
`python -m pipeline invoke` sends a prompt to the deployment, and `python -m pipeline reject`
with the rejection's event takes it down. moto delivers no SageMaker events, so the rehearsal
delivers them; the interpreter (pipeline/rehearsal/state_machine.py) runs the waits on the
stand-in's simulated clock.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.events.models import EventPattern

from lambdas.registry import describe_checkpoint
from pipeline.commands.cli import main as command
from pipeline.config import EnvironmentConfig
from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.resources import LocalStage
from pipeline.rehearsal.stand_in_bedrock import StandInBedrock
from pipeline.rehearsal.state_machine import Execution, Interpreter
from pipeline.rehearsal.templates import stage_stacks
from pipeline.serving_config import (
    DEPLOYED,
    KEY_SERVING_DEPLOYMENT,
    KEY_SERVING_STATUS,
    state_machine_name,
)

STATE_CHANGE = "SageMaker Model Package State Change"
PROMPT = "Summarize what this checkpoint was fine-tuned for in one sentence."


@dataclass
class ServingRehearsal:
    """What serving did: each execution, the metadata recorded after it, the answer."""

    package_arn: str
    executions: list[tuple[str, Execution, dict[str, str]]] = field(default_factory=list)
    answers: int = 0

    @property
    def succeeded(self) -> bool:
        """Approval deployed it and a prompt was answered; rejection took it down."""
        statuses = [(e.status, m.get(KEY_SERVING_STATUS)) for _, e, m in self.executions]
        return statuses == [("SUCCEEDED", DEPLOYED), ("SUCCEEDED", "TakenDown")] and (
            self.answers == 1
        )


def package_event(sm: Any, package_arn: str) -> dict[str, Any]:
    """The EventBridge event SageMaker sends when a package's approval changes (its documented
    fields; the detail carries the package's current state)."""
    package = sm.describe_model_package(ModelPackageName=package_arn)
    region, account = package_arn.split(":")[3:5]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATE_CHANGE,
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [package_arn],
        "detail": {
            "ModelPackageGroupName": package["ModelPackageGroupName"],
            "ModelPackageVersion": package["ModelPackageVersion"],
            "ModelPackageArn": package_arn,
            "ModelPackageName": package.get("ModelPackageName", package_arn.split("/")[-2]),
            "ModelApprovalStatus": package["ModelApprovalStatus"],
            "CreationTime": int(package["CreationTime"].timestamp() * 1000),
        },
    }


def serving_rule_pattern(cdk_out: Path, stage: str) -> dict[str, Any]:
    """The event pattern of the deployed rule that targets the serving state machine."""
    for stack in stage_stacks(cdk_out, stage):
        resources = stack.template.get("Resources", {})
        machines = {
            k for k, r in resources.items() if r["Type"] == "AWS::StepFunctions::StateMachine"
        }
        for resource in resources.values():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            targets = json.dumps(resource["Properties"].get("Targets", []))
            if any(f'"Ref": "{m}"' in targets for m in machines):
                return dict(resource["Properties"]["EventPattern"])
    raise DefinitionError(f"no rule of stage {stage} in {cdk_out} starts a state machine")


class ServingRunner:
    """Delivers a package's event to the deployed state machine, as EventBridge would."""

    def __init__(
        self,
        *,
        session: Any,
        stage: LocalStage,
        env: EnvironmentConfig,
        cdk_out: Path,
        bedrock: StandInBedrock,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        name = state_machine_name(env.name)
        if name not in stage.state_machines:
            raise DefinitionError(f"{name} is not deployed: is serving on for {env.name}?")
        self.definition = json.loads(stage.state_machines[name])
        self.pattern = serving_rule_pattern(cdk_out, env.name)
        self.session = session
        self.bedrock = bedrock
        self.on_wait = on_wait

    def deliver(self, event: dict[str, Any]) -> Execution | None:
        """Run the machine for `event` when the rule matches it (None when it does not)."""
        pattern = EventPattern.load(json.dumps(self.pattern))
        if not pattern.matches_event(event):  # type: ignore[arg-type]  # a plain event dict
            return None
        interpreter = Interpreter(self.definition, self.session, self.bedrock.clock, self.on_wait)
        return interpreter.run(event)


def rehearse_serving(
    *,
    session: Any,
    stage: LocalStage,
    env: EnvironmentConfig,
    cdk_out: Path,
    endpoint: LocalEndpoint,
    checkpoints: Iterable[str],
    package_arn: str | None,
    log: Callable[[str], None],
) -> ServingRehearsal | None:
    """Approve, serve and converse with `package_arn`, then reject it and take it down. None
    (nothing done) when there is no package (a round failed) or the environment serves nothing;
    `checkpoints` are the escrow URIs the stand-in trainer wrote (what an import can read)."""
    if package_arn is None or not env.serving.enabled:
        return None
    bedrock = endpoint.bedrock
    bedrock.checkpoints = lambda: checkpoints
    # The machine records without resending the approval status, as SageMaker allows.
    endpoint.registry_updates.enabled = True
    runner = ServingRunner(session=session, stage=stage, env=env, cdk_out=cdk_out, bedrock=bedrock)
    sm = session.client("sagemaker")
    result = ServingRehearsal(package_arn=package_arn)
    log(f"serving on Bedrock (stand-in), state machine {state_machine_name(env.name)}:")
    for verb in ("approve", "reject"):
        reason = ["--reason", "rehearsal: take it down again"] if verb == "reject" else []
        _command([verb, package_arn, *reason], log)
        execution = runner.deliver(package_event(sm, package_arn))
        if execution is None:
            raise DefinitionError(f"the serving rule does not match the {verb} event")
        metadata = dict(describe_checkpoint(sm, package_arn).metadata)
        result.executions.append((verb, execution, metadata))
        served = {k: v for k, v in metadata.items() if k.startswith("Serving")}
        minutes = bedrock.clock.now() / 60
        log(
            f"  {verb}: execution {execution.status} through {len(execution.states)} states "
            f"({minutes:.0f} simulated minutes so far)"
        )
        for key, value in sorted(served.items()):
            log(f"    {key}: {value}")
        if execution.error:
            log(f"    {execution.error}: {execution.cause}")
        if verb == "approve" and metadata.get(KEY_SERVING_STATUS) == DEPLOYED:
            before = len(bedrock.conversations)
            _command(["invoke", package_arn, PROMPT], log)
            result.answers = len(bedrock.conversations) - before
            _command(["lineage", "--env", env.name], log)
    log(
        f"  deployments left: {sorted(bedrock.deployments) or 'none'}; custom models kept: "
        f"{sorted(bedrock.models) or 'none'}"
    )
    if KEY_SERVING_DEPLOYMENT not in result.executions[0][2]:
        log("  the approval recorded no deployment")
    return result


def _command(argv: list[str], log: Callable[[str], None]) -> None:
    log(f"  $ python -m pipeline {' '.join(json.dumps(a) if ' ' in a else a for a in argv)}")
    status = command(argv)
    if status != 0:
        raise DefinitionError(f"`python -m pipeline {argv[0]}` ended with status {status}")
