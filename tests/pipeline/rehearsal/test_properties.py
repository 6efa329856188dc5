"""Property paths and values (`pipeline.rehearsal.properties`): paths held to the real response's
shape, Lambda outputs converted to their declared types."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.properties import convert, property_value, sagemaker_model

RESPONSE: dict[str, Any] = {
    "TrainingJobName": "pipelines-abc-Train-x",
    "ModelArtifacts": {"S3ModelArtifacts": "s3://out/jobs/model.tar.gz"},
    "HyperParameters": {"base_model": "nova"},
}


def describe_training_job() -> Any:
    return sagemaker_model().operation_model("DescribeTrainingJob").output_shape


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("ModelArtifacts.S3ModelArtifacts", "s3://out/jobs/model.tar.gz"),
        ("HyperParameters['base_model']", "nova"),
        ("TrainingJobName", "pipelines-abc-Train-x"),
    ],
)
def test_a_path_of_the_real_response_reads_its_value(prop: str, value: str) -> None:
    assert property_value(f"Steps.Train.{prop}", describe_training_job(), RESPONSE, prop) == value


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ("ModelArtifacts.S3ModelArtifact", "has no member 'S3ModelArtifact' in the real API"),
        ("FinalMetricDataList[0].Value", "the job's response has no FinalMetricDataList"),
        ("ModelArtifacts..", "cannot parse property path"),
    ],
)
def test_a_path_the_response_does_not_have_names_the_get(prop: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as raised:
        property_value(f"Steps.Train.{prop}", describe_training_job(), RESPONSE, prop)
    assert "Get Steps.Train." in str(raised.value) or "cannot parse" in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "value", "converted"),
    [
        ("String", True, "true"),
        ("Integer", "42", 42),
        ("Float", 0.5, 0.5),
        ("Boolean", "True", True),
        ("Boolean", False, False),
    ],
)
def test_outputs_are_converted_to_their_declared_type(
    kind: str, value: Any, converted: Any
) -> None:
    assert convert("Out", kind, value) == converted


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("Boolean", "yes", "Out: 'yes' is not a valid Boolean"),
        ("Integer", "4.5", "Out: '4.5' is not a valid Integer"),
        ("Json", "{}", "Out: type 'Json' is not supported"),
    ],
)
def test_an_output_that_is_not_its_type_is_refused(kind: str, value: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        convert("Out", kind, value)
