"""The serving state machine's definition, run by the rehearsal's interpreter against the local
endpoint and the stand-in Bedrock: approval, duplicated events, failures, rejections."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.stand_in_bedrock import IMPORT_SECONDS
from pipeline.rehearsal.state_machine import Execution, Interpreter
from pipeline.serving_config import ServingConfig
from stacks.serving_definition import ServingInputs, serving_definition

GROUP = "nova-sft-sandbox-checkpoints"
CHECKPOINT = "s3://customer-escrow-123456789012-smtj-0a1b2c3d/job/step_100"


class World:
    """A sandbox's serving resources in the local endpoint, and one registered checkpoint."""

    def __init__(self, aws: boto3.Session, endpoint: LocalEndpoint, **serving: Any) -> None:
        self.aws, self.endpoint = aws, endpoint
        role = aws.client("iam").create_role(
            RoleName="import",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "bedrock.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]
        key = aws.client("kms").create_key()["KeyMetadata"]["Arn"]
        sns, sqs = aws.client("sns"), aws.client("sqs")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        self.queue = sqs.create_queue(QueueName="heard")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        self.sm = aws.client("sagemaker")
        self.sm.create_model_package_group(ModelPackageGroupName=GROUP)
        self.definition = serving_definition(
            ServingInputs(
                environment="sandbox",
                group_name=GROUP,
                import_role_arn=role["Arn"],
                key_arn=key,
                topic_arn=topic,
                serving=ServingConfig(deploy="on_approval", **serving),
            )
        )
        endpoint.bedrock.checkpoints = lambda: {CHECKPOINT}
        endpoint.registry_updates.enabled = True  # reset() turns it off for the next test

    def register(self, checkpoint: str = CHECKPOINT, technique: str = "LoRA") -> str:
        arn = self.sm.create_model_package(
            ModelPackageGroupName=GROUP,
            CustomerMetadataProperties={"CheckpointS3Uri": checkpoint, "Technique": technique},
            ModelApprovalStatus="PendingManualApproval",
        )["ModelPackageArn"]
        return str(arn)

    def set_status(self, arn: str, status: str) -> None:
        self.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)

    def event(self, arn: str) -> dict[str, Any]:
        package = self.sm.describe_model_package(ModelPackageName=arn)
        return {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "detail": {
                "ModelPackageArn": arn,
                "ModelPackageGroupName": GROUP,
                "ModelApprovalStatus": package["ModelApprovalStatus"],
            },
        }

    def run(self, payload: dict[str, Any], on_wait: Any = None) -> Execution:
        clock = self.endpoint.bedrock.clock
        return Interpreter(self.definition, self.aws, clock, on_wait).run(payload)

    def metadata(self, arn: str) -> dict[str, str]:
        package = self.sm.describe_model_package(ModelPackageName=arn)
        return dict(package.get("CustomerMetadataProperties", {}))

    def heard(self) -> list[str]:
        messages = (
            self.aws.client("sqs")
            .receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        return [json.loads(m["Body"])["Message"] for m in messages]


@pytest.fixture
def world(aws: boto3.Session, local_endpoint: LocalEndpoint) -> World:
    return World(aws, local_endpoint, take_down=("rejected",))


def test_an_approval_imports_deploys_and_records_both(world: World) -> None:
    arn = world.register()
    world.set_status(arn, "Approved")
    execution = world.run(world.event(arn))
    assert (execution.status, execution.error) == ("SUCCEEDED", None)
    assert "ImportModel" in execution.states
    assert "CreateDeployment" in execution.states
    metadata = world.metadata(arn)
    (model,) = world.endpoint.bedrock.models.values()
    (deployment,) = world.endpoint.bedrock.deployments.values()
    assert metadata["ServingStatus"] == "Deployed"
    assert metadata["ServingCustomModelArn"] == model.arn
    assert metadata["ServingDeploymentArn"] == deployment.arn
    assert metadata["CheckpointS3Uri"] == CHECKPOINT  # the registry's own fields are kept
    assert world.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == (
        "Approved"
    )
    assert model.name == "nova-sft-sandbox-v1"
    assert model.source == CHECKPOINT
    assert {"key": "nova-sft:model-package-arn", "value": arn} in model.tags
    assert world.endpoint.bedrock.clock.now() >= IMPORT_SECONDS  # it waited for the import


def test_a_duplicated_event_imports_nothing_twice(world: World) -> None:
    arn = world.register()
    world.set_status(arn, "Approved")
    first = world.run(world.event(arn))
    second = world.run(world.event(arn))
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    # The second finds the model and the deployment by name and creates neither.
    assert "ImportModel" not in second.states
    assert "CreateDeployment" not in second.states
    assert len(world.endpoint.bedrock.models) == 1
    assert len(world.endpoint.bedrock.deployments) == 1


def test_a_failed_import_is_recorded_and_published(world: World) -> None:
    arn = world.register(checkpoint="s3://customer-escrow-123456789012-smtj-ffffffff/gone/step_1")
    world.set_status(arn, "Approved")
    execution = world.run(world.event(arn))
    assert (execution.status, execution.error) == ("FAILED", "ServingFailed")
    metadata = world.metadata(arn)
    assert metadata["ServingStatus"] == "Failed"
    assert "ImportFailed" in metadata["ServingFailure"]
    assert (
        "no checkpoint at s3://customer-escrow-123456789012-smtj-ffffffff"
        in (metadata["ServingFailure"])
    )
    assert world.endpoint.bedrock.deployments == {}
    (message,) = world.heard()
    assert arn in message
    assert "ImportFailed" in message


def test_a_rejection_during_the_import_deploys_nothing(world: World) -> None:
    arn = world.register()
    world.set_status(arn, "Approved")

    def reject_once(state: str) -> None:
        if state == "WaitForModel" and world.metadata(arn).get("ServingStatus") is None:
            world.set_status(arn, "Rejected")

    execution = world.run(world.event(arn), on_wait=reject_once)
    assert execution.status == "SUCCEEDED"
    assert "CreateDeployment" not in execution.states
    assert world.metadata(arn)["ServingStatus"] == "ImportStopped"
    assert world.endpoint.bedrock.deployments == {}
    # The rejection's own event finds nothing deployed.
    assert world.run(world.event(arn)).states[-1] == "NothingDeployed"


def test_a_rejection_takes_the_deployment_down_and_keeps_the_model(world: World) -> None:
    arn = world.register()
    world.set_status(arn, "Approved")
    world.run(world.event(arn))
    world.set_status(arn, "Rejected")
    execution = world.run(world.event(arn))
    assert execution.status == "SUCCEEDED"
    assert world.endpoint.bedrock.deployments == {}
    assert len(world.endpoint.bedrock.models) == 1
    assert world.metadata(arn)["ServingStatus"] == "TakenDown"


def test_a_full_rank_checkpoint_is_refused_before_any_import(world: World) -> None:
    arn = world.register(technique="FullRank")
    world.set_status(arn, "Approved")
    execution = world.run(world.event(arn))
    assert execution.status == "FAILED"
    assert "FullRankNotOnDemand" in world.metadata(arn)["ServingFailure"]
    assert world.endpoint.bedrock.models == {}


def test_an_undeploy_request_takes_an_approved_checkpoint_down(world: World) -> None:
    arn = world.register()
    world.set_status(arn, "Approved")
    world.run(world.event(arn))
    request = world.event(arn)
    request["detail"]["Request"] = "undeploy"
    assert world.run(request).status == "SUCCEEDED"
    assert world.endpoint.bedrock.deployments == {}


def test_without_take_down_a_rejection_changes_nothing(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    world = World(aws, local_endpoint)
    arn = world.register()
    world.set_status(arn, "Approved")
    world.run(world.event(arn))
    world.set_status(arn, "Rejected")
    assert world.run(world.event(arn)).states[-1] == "NothingToDo"
    assert len(local_endpoint.bedrock.deployments) == 1


def test_a_package_of_another_group_is_refused(world: World) -> None:
    world.sm.create_model_package_group(ModelPackageGroupName="other")
    arn = world.sm.create_model_package(
        ModelPackageGroupName="other",
        CustomerMetadataProperties={"CheckpointS3Uri": CHECKPOINT},
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    execution = world.run(world.event(arn))
    assert (execution.status, execution.error) == ("FAILED", "NotThisEnvironment")


def test_a_newer_approval_takes_the_superseded_deployment_down(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    world = World(aws, local_endpoint, take_down=("rejected", "superseded"))
    older = world.register()
    world.set_status(older, "Approved")
    assert world.run(world.event(older)).status == "SUCCEEDED"
    newer = world.register()
    world.set_status(newer, "Approved")
    execution = world.run(world.event(newer))
    assert execution.status == "SUCCEEDED"
    assert "TakeDownSuperseded" in execution.states
    assert sorted(local_endpoint.bedrock.deployments) == ["nova-sft-sandbox-v2"]
    assert world.metadata(newer)["ServingStatus"] == "Deployed"
    taken = world.metadata(older)
    assert taken["ServingStatus"] == "TakenDown"
    assert taken["ServingSupersededBy"] == "nova-sft-sandbox-v2"
    assert taken["CheckpointS3Uri"] == CHECKPOINT
    assert len(local_endpoint.bedrock.models) == 2  # the models are kept


def test_a_deployment_this_machine_did_not_make_is_left_alone(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    world = World(aws, local_endpoint, take_down=("superseded",))
    first = world.register()
    world.set_status(first, "Approved")
    world.run(world.event(first))
    untagged = local_endpoint.bedrock.deployments["nova-sft-sandbox-v1"]
    untagged.tags = []  # as if made by hand under the same prefix
    second = world.register()
    world.set_status(second, "Approved")
    assert world.run(world.event(second)).status == "SUCCEEDED"
    assert sorted(local_endpoint.bedrock.deployments) == [
        "nova-sft-sandbox-v1",
        "nova-sft-sandbox-v2",
    ]
    assert world.metadata(first)["ServingStatus"] == "Deployed"
