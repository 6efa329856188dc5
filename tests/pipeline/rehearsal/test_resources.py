"""Creating each resource kind (`pipeline.rehearsal.resources`): unknown kinds and a pipeline
the service would refuse stop the deployment."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.stack import deploy_stage
from tests.pipeline.rehearsal.test_stack import assembly, training_template


def test_unknown_resource_types_stop_the_deployment(tmp_path: Path, aws: boto3.Session) -> None:
    extra = {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}
    with pytest.raises(
        DefinitionError, match="resource type AWS::SQS::Queue is not supported"
    ) as raised:
        deploy_stage(assembly(tmp_path, training_template(extra)), "sandbox", aws)
    # The message says where a new kind is created.
    assert "pipeline/rehearsal/resources.py" in str(raised.value)


def test_a_pipeline_parameter_with_an_empty_default_is_refused(
    tmp_path: Path, aws: boto3.Session
) -> None:
    template = training_template()
    template["Resources"]["Pipeline"]["Properties"]["PipelineDefinition"] = {
        "PipelineDefinitionBody": json.dumps(
            {
                "Parameters": [
                    {"Name": "TrainDataS3Uri", "Type": "String"},
                    {"Name": "ValidationDataS3Uri", "Type": "String", "DefaultValue": ""},
                    {"Name": "MaxSteps", "Type": "Integer", "DefaultValue": 0},
                ],
                "Steps": [],
            }
        )
    }
    with pytest.raises(DefinitionError) as caught:
        deploy_stage(assembly(tmp_path, template), "sandbox", aws)
    message = str(caught.value)
    assert "sandbox-Training/Pipeline: parameter(s) ValidationDataS3Uri have an empty" in message
    assert "MaxSteps" not in message  # 0 is a value; only the empty string is refused
    assert aws.client("sagemaker").list_pipelines()["PipelineSummaries"] == []
