"""Every IAM permission of every environment, statement by statement.

Each role's grants are compared as a whole with the expected set of (action, resource,
condition) triples, so a permission that appears, widens or disappears fails a test. References
are written as placeholders (see conftest.flatten): `<Path.Arn>` for a resource of the stack,
`import:<export>` for the DataStack's exports, `<AWS::AccountId>` for the deploying account.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from pipeline.config import read_cdk_json
from stacks.tracking import REGISTER_ACTIONS, TRAINING_ACTIONS
from tests.cloud_assembly import ENVIRONMENTS, Assembly

Grant = tuple[str, str, str]  # action, resource, condition as JSON ("" when none)
Flat = Callable[[Mapping[str, Any]], dict[str, Any]]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants_of(template: dict[str, Any], role: str) -> set[Grant]:
    """Everything the policies attached to `role` (a placeholder like `<PipelineRole>`) allow."""
    found: set[Grant] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or role not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            condition = json.dumps(statement.get("Condition", ""), sort_keys=True)
            for action in _list(statement["Action"]):
                for target in _list(statement["Resource"]):
                    found.add((action, target, condition))
    return found


def expand(actions: list[str], resources: list[str], condition: Any = "") -> set[Grant]:
    cond = json.dumps(condition, sort_keys=True)
    return {(a, r, cond) for a in actions for r in resources}


def account_of(env: str) -> str:
    return read_cdk_json().environment(env).account or "<AWS::AccountId>"


def tracking_grants(env: str, actions: tuple[str, ...]) -> set[Grant]:
    """What a role may do on the environment's own MLflow tracking server (none when it does
    not track; tests/stacks/test_tracking.py holds the rest)."""
    if not read_cdk_json().environment(env).creates_tracking_server:
        return set()
    return expand(list(actions), ["<Tracking/Server.TrackingServerArn>"])


def statements(value: Any) -> Iterator[dict[str, Any]]:
    """Every policy statement anywhere in a template (identity, key, bucket, topic, trust)."""
    if isinstance(value, dict):
        if "Effect" in value and ("Action" in value or "NotAction" in value):
            yield value
        for item in value.values():
            yield from statements(item)
    elif isinstance(value, list):
        for item in value:
            yield from statements(item)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def env_training(request: pytest.FixtureRequest, assembly: Assembly, flat: Flat) -> tuple[str, Any]:
    env = str(request.param)
    return env, flat(assembly.template_json(env, "Training"))


def test_training_job_role_grants(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    account = account_of(env)
    data = f"import:nova-sft-{env}-data"
    escrow = f"arn:aws:s3:::customer-escrow-{account}*"
    assert grants_of(template, "<TrainingJobRole>") == (
        expand(["s3:ListBucket"], [f"{data}:DataBucketArn", f"{data}:ArtifactsBucketArn"])
        | expand(["s3:GetObject"], [f"{data}:DataBucketArn/*"])
        # The run's recipe and the job's outputs: under runs/ only, never the whole bucket.
        | expand(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [f"{data}:ArtifactsBucketArn/runs/*"],
        )
        | expand(
            ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"],
            [f"{data}:DataKeyArn"],
        )
        | expand(["s3:ListBucket"], [escrow])
        | expand(["s3:GetObject"], [f"{escrow}/*"])
        | expand(
            [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            [
                "arn:aws:ecr:us-east-1:708977205387:repository/nova-fine-tune-repo",
                # The evaluation jobs run with this role (decision 0017).
                "arn:aws:ecr:us-east-1:708977205387:repository/nova-evaluation-repo",
            ],
        )
        | expand(["ecr:GetAuthorizationToken"], ["*"])
        | expand(
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            [f"arn:aws:logs:us-east-1:{account}:log-group:/aws/sagemaker/TrainingJobs:*"],
        )
        | expand(
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
        )
        | tracking_grants(env, TRAINING_ACTIONS)
    )


def test_pipeline_role_grants(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    account = account_of(env)
    assert grants_of(template, "<PipelineRole>") == (
        expand(
            [
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            [f"arn:aws:sagemaker:us-east-1:{account}:training-job/*"],
        )
        | expand(
            ["iam:PassRole"],
            ["<TrainingJobRole.Arn>"],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        | expand(
            ["lambda:InvokeFunction"],
            [
                "<Functions/ValidateDataset.Arn>",
                "<Functions/PrepareRecipe.Arn>",
                "<Functions/RegisterCheckpoint.Arn>",
                "<Functions/PrepareEvaluation.Arn>",
            ],
        )
    )
    # The evaluate-only pipeline's role (decision 0017): the same jobs and the same PassRole,
    # and the functions of the evaluate-only path only.
    assert grants_of(template, "<EvaluatePipeline/Role>") == (
        expand(
            [
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            [f"arn:aws:sagemaker:us-east-1:{account}:training-job/*"],
        )
        | expand(
            ["iam:PassRole"],
            ["<TrainingJobRole.Arn>"],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        | expand(
            ["lambda:InvokeFunction"],
            [
                "<Functions/ValidateDataset.Arn>",
                "<Functions/PrepareEvaluation.Arn>",
                "<Functions/RecordEvaluation.Arn>",
            ],
        )
    )


def test_function_role_grants(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    account = account_of(env)
    data = f"import:nova-sft-{env}-data"
    runs = f"{data}:ArtifactsBucketArn/runs/*"
    key = f"{data}:DataKeyArn"

    def logs(function: str) -> set[Grant]:
        return expand(
            ["logs:CreateLogStream", "logs:PutLogEvents"], [f"<Functions/{function}Logs.Arn>"]
        )

    assert grants_of(template, "<Functions/ValidateDatasetRole>") == (
        expand(["s3:ListBucket"], [f"{data}:DataBucketArn"])
        | expand(["s3:GetObject"], [f"{data}:DataBucketArn/*"])
        | expand(["s3:PutObject"], [runs])
        | expand(["kms:Decrypt", "kms:GenerateDataKey"], [key])
        | logs("ValidateDataset")
    )
    group = f"nova-sft-{env}-checkpoints"
    group_arn = f"arn:aws:sagemaker:us-east-1:{account}:model-package-group/{group}"
    versions = f"arn:aws:sagemaker:us-east-1:{account}:model-package/{group}/*"
    assert grants_of(template, "<Functions/PrepareRecipeRole>") == (
        expand(["s3:PutObject"], [runs])
        | expand(["kms:GenerateDataKey"], [key])
        # A checkpoint's technique is read from this environment's group only.
        | expand(["sagemaker:DescribeModelPackage"], [versions])
        | expand(["sagemaker:ListModelPackages"], ["*"])
        | logs("PrepareRecipe")
    )
    assert grants_of(template, "<Functions/RegisterCheckpointRole>") == (
        expand(["s3:ListBucket"], [f"{data}:ArtifactsBucketArn"])
        | expand(["s3:GetObject"], [runs, f"{data}:ArtifactsBucketArn/baselines/*"])
        # The evaluation's statistics report, which ModelMetrics points at (decision 0017).
        | expand(["s3:PutObject"], [runs])
        | expand(["kms:Decrypt", "kms:GenerateDataKey"], [key])
        | expand(["sagemaker:DescribeModelPackageGroup"], [group_arn])
        | expand(
            ["sagemaker:CreateModelPackage"],
            [group_arn, versions],
            {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}},
        )
        | expand(["sagemaker:DescribeModelPackage"], [group_arn, versions])
        | expand(["sagemaker:ListModelPackages"], ["*"])
        | logs("RegisterCheckpoint")
        | tracking_grants(env, REGISTER_ACTIONS)
    )
    assert grants_of(template, "<Functions/PrepareEvaluationRole>") == (
        expand(["s3:ListBucket"], [f"{data}:ArtifactsBucketArn", f"{data}:DataBucketArn"])
        | expand(["s3:GetObject"], [runs, f"{data}:DataBucketArn/*"])
        | expand(["s3:PutObject"], [runs])
        | expand(["kms:Decrypt", "kms:GenerateDataKey"], [key])
        | logs("PrepareEvaluation")
    )
    # The evaluate-only pipeline's record step (decision 0017): reads the evaluation's output,
    # writes its report under runs/ and the baseline score under baselines/, and records the
    # score on a package of this environment's group, never approving it.
    baselines = f"{data}:ArtifactsBucketArn/baselines/*"
    assert grants_of(template, "<Functions/RecordEvaluationRole>") == (
        expand(["s3:ListBucket"], [f"{data}:ArtifactsBucketArn"])
        | expand(["s3:GetObject", "s3:PutObject"], [runs, baselines])
        | expand(["kms:Decrypt", "kms:GenerateDataKey"], [key])
        | expand(["sagemaker:DescribeModelPackage"], [versions])
        | expand(
            ["sagemaker:UpdateModelPackage"],
            [versions],
            {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}},
        )
        | expand(["sagemaker:ListModelPackages"], ["*"])
        | logs("RecordEvaluation")
    )


def test_every_policy_belongs_to_a_known_role(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    roles = {
        "<TrainingJobRole>",
        "<PipelineRole>",
        "<Functions/ValidateDatasetRole>",
        "<Functions/PrepareRecipeRole>",
        "<Functions/RegisterCheckpointRole>",
        "<Functions/PrepareEvaluationRole>",
        # The evaluate-only pipeline's record function and pipeline role (decision 0017).
        "<Functions/RecordEvaluationRole>",
        "<EvaluatePipeline/Role>",
    }
    if env != "sandbox":  # deployed by the toolchain: smoke-tested, approvals forwarded
        roles |= {"<SmokeTest/Role>", "<Notifications/StateChangeRule/EventsRole>"}
    # Approved checkpoints served on Bedrock (cdk.json serves them in every environment).
    roles |= {
        "<Serving/ImportRole>",
        "<Serving/StateMachine/Role>",
        "<Serving/StateMachine/EventsRole>",
    }
    if read_cdk_json().environment(env).creates_tracking_server:
        roles.add("<Tracking/Role>")
    attached = [
        role
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for role in r["Properties"]["Roles"]
    ]
    assert set(attached) == roles
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::IAM::ManagedPolicy" not in kinds  # no managed policy, AWS's or ours
    assert all(
        "ManagedPolicyArns" not in r["Properties"] and "Policies" not in r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    )


def test_roles_trust_only_their_service(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    trust = {
        logical_id: r["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r is not _smoke_role(template)
    }
    services = sorted(
        statement["Principal"]["Service"]
        for document in trust.values()
        for statement in document
        if statement["Action"] == "sts:AssumeRole"
    )
    forwarding = ["events.amazonaws.com"] if env != "sandbox" else []
    serving = ["bedrock.amazonaws.com", "events.amazonaws.com", "states.amazonaws.com"]
    # The tracking server's role trusts SageMaker too (tests/stacks/test_tracking.py).
    tracking = 1 if read_cdk_json().environment(env).creates_tracking_server else 0
    # Five functions (the fifth records evaluations); SageMaker: the training job role, the
    # training pipeline's and the evaluate-only pipeline's roles (decision 0017).
    assert services == sorted(
        forwarding
        + ["lambda.amazonaws.com"] * 5
        + ["sagemaker.amazonaws.com"] * (3 + tracking)
        + serving
    )
    assert all(len(document) == 1 for document in trust.values())


def test_approval_events_are_forwarded_to_the_toolchains_bus_only(
    env_training: tuple[str, dict[str, Any]],
) -> None:
    env, template = env_training
    forwarder = "<Notifications/StateChangeRule/EventsRole>"
    if env == "sandbox":
        assert grants_of(template, forwarder) == set()
        return
    toolchain = read_cdk_json().toolchain
    assert toolchain is not None
    bus = f"arn:aws:events:{toolchain.region}:{toolchain.account}:event-bus/default"
    assert grants_of(template, forwarder) == expand(["events:PutEvents"], [bus])
    (rule,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "Notifications" in json.dumps(r["Properties"])
    ]
    assert rule["Properties"]["Targets"] == [
        {"Arn": "<Notifications/Topic>", "Id": "Target0"},
        {"Arn": bus, "Id": "Target1", "RoleArn": f"{forwarder[:-1]}.Arn>"},
    ]


def _smoke_role(template: dict[str, Any]) -> dict[str, Any] | None:
    roles = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"].get("RoleName", "").endswith("-smoke-test")
    ]
    assert len(roles) <= 1
    return roles[0] if roles else None


def test_only_the_toolchains_smoke_runner_may_assume_the_smoke_role(
    env_training: tuple[str, dict[str, Any]],
) -> None:
    env, template = env_training
    role = _smoke_role(template)
    if env == "sandbox":
        assert role is None  # deployed by hand: no toolchain reaches into it
        return
    assert role is not None
    properties = role["Properties"]
    toolchain = read_cdk_json().toolchain
    assert toolchain is not None
    runner = f"arn:aws:iam::{toolchain.account}:role/nova-sft-toolchain-smoke-{env}"
    assert properties["RoleName"] == f"nova-sft-{env}-smoke-test"
    assert properties["MaxSessionDuration"] == 3600
    assert properties["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": runner}},
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{toolchain.account}:root"},
        }
    ]


def test_smoke_role_only_describes_this_environments_pipeline_and_group(
    env_training: tuple[str, dict[str, Any]],
) -> None:
    env, template = env_training
    if env == "sandbox":
        assert grants_of(template, "<SmokeTest/Role>") == set()
        return
    account = account_of(env)
    assert grants_of(template, "<SmokeTest/Role>") == (
        expand(
            ["sagemaker:DescribePipeline"],
            [f"arn:aws:sagemaker:us-east-1:{account}:pipeline/nova-sft-{env}"],
        )
        | expand(
            ["sagemaker:DescribeModelPackageGroup"],
            [
                f"arn:aws:sagemaker:us-east-1:{account}:model-package-group/nova-sft-{env}-checkpoints"
            ],
        )
        | expand(
            ["states:DescribeStateMachine"],
            [f"arn:aws:states:us-east-1:{account}:stateMachine:nova-sft-{env}-serving"],
        )
    )


def test_serving_role_grants(env_training: tuple[str, dict[str, Any]]) -> None:
    env, template = env_training
    account = account_of(env)
    key = f"import:nova-sft-{env}-data:DataKeyArn"
    escrow = f"arn:aws:s3:::customer-escrow-{account}*"
    assert grants_of(template, "<Serving/ImportRole>") == (
        expand(["s3:ListBucket"], [escrow])
        | expand(["s3:GetObject"], [f"{escrow}/*"])
        | expand(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [key])
    )
    bedrock = f"arn:aws:bedrock:us-east-1:{account}"
    models, deployments = f"{bedrock}:custom-model/*", f"{bedrock}:custom-model-deployment/*"
    versions = f"arn:aws:sagemaker:us-east-1:{account}:model-package/nova-sft-{env}-checkpoints/*"
    via = {"StringEquals": {"kms:ViaService": "bedrock.us-east-1.amazonaws.com"}}
    logs_and_tracing = {
        (action, "*", '""')
        for action in (
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        )
    }
    assert grants_of(template, "<Serving/StateMachine/Role>") == (
        expand(["sagemaker:DescribeModelPackage"], [versions])
        | expand(
            ["sagemaker:UpdateModelPackage"],
            [versions],
            {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}},
        )
        | expand(
            [
                "bedrock:CreateCustomModel",
                "bedrock:GetCustomModel",
                "bedrock:DeleteCustomModel",
                "bedrock:TagResource",
            ],
            [models],
        )
        | expand(["bedrock:CreateCustomModelDeployment"], [models, deployments])
        | expand(
            [
                "bedrock:GetCustomModelDeployment",
                "bedrock:DeleteCustomModelDeployment",
                "bedrock:ListTagsForResource",
            ],
            [deployments],
        )
        # Superseded deployments are found by listing (cdk.json takes them down everywhere).
        | expand(["bedrock:ListCustomModelDeployments"], ["*"])
        | expand(
            ["iam:PassRole"],
            ["<Serving/ImportRole.Arn>"],
            {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
        )
        | expand(
            ["kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey", "kms:Decrypt"], [key], via
        )
        | expand(["sns:Publish"], ["<Notifications/Topic>"])
        | expand(
            ["kms:GenerateDataKey", "kms:Decrypt"],
            ["<Notifications/TopicKey.Arn>"],
            {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
        )
        | logs_and_tracing
    )
    assert grants_of(template, "<Serving/StateMachine/EventsRole>") == expand(
        ["states:StartExecution"], ["<Serving/StateMachine>"]
    )


def allow_statements(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every policy in a template, with the type of the resource that
    holds it (identity, key, bucket, topic, event bus policies and trust policies alike).
    """
    for resource in template["Resources"].values():
        for statement in statements(resource.get("Properties", {})):
            if statement["Effect"] == "Allow":
                yield resource["Type"], statement


def wildcard_actions(statement: Mapping[str, Any]) -> list[str]:
    return [action for action in _list(statement.get("Action", [])) if "*" in action]


def key_administration(account: str) -> dict[str, Any]:
    """The statement every key policy starts with: the account administers its own key, and
    IAM decides who in the account may use it. The only `kms:*` the project grants.
    """
    return {
        "Action": "kms:*",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Resource": "*",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("stack", ["Data", "Training"])
def test_no_wildcard_action_anywhere(assembly: Assembly, flat: Flat, env: str, stack: str) -> None:
    template = flat(assembly.template_json(env, stack))
    found = list(statements(template))
    assert found, "the scan found no statements at all"
    for statement in found:
        assert "*" not in _list(statement.get("Action", [])), statement
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
    # No Allow grants a family of actions (`s3:*`, `s3:Get*`) in any policy, identity or
    # resource, except the key administration statement of the stack's one key.
    allowed = list(allow_statements(template))
    assert allowed
    wildcards = [(kind, s) for kind, s in allowed if wildcard_actions(s)]
    assert wildcards == [("AWS::KMS::Key", key_administration(account_of(env)))]


def test_toolchain_wildcard_actions_are_cdk_grants_on_its_artifacts_only(
    assembly: Assembly, flat: Flat
) -> None:
    template = flat(assembly.toolchain_json())
    toolchain = read_cdk_json().toolchain
    assert toolchain is not None
    for statement in statements(template):
        assert "*" not in _list(statement.get("Action", [])), statement
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
    bucket = "<Pipeline/Pipeline/ArtifactsBucket.Arn>"
    key = "<Pipeline/Pipeline/ArtifactsBucketEncryptionKey.Arn>"
    # CDK Pipelines' `grant_*` on the artifact bucket and its key (decision 0008,
    # stacks/toolchain_findings.py), in the roles' policies and in the bucket's own policy.
    explained = expand(
        ["s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"],
        [bucket, f"{bucket}/*"],
    ) | expand(["kms:GenerateDataKey*", "kms:ReEncrypt*"], [key])
    administration = key_administration(toolchain.account)
    administered: list[str] = []
    granted: set[Grant] = set()
    for kind, statement in allow_statements(template):
        if statement == administration:
            administered.append(kind)
            continue
        condition = json.dumps(statement.get("Condition", ""), sort_keys=True)
        for action in wildcard_actions(statement):
            for target in _list(statement["Resource"]):
                granted.add((action, target, condition))
    assert administered == ["AWS::KMS::Key", "AWS::KMS::Key"]  # the artifacts and topic keys
    assert granted
    assert granted <= explained, granted - explained


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_identity_policies_allow_no_service_wide_wildcard(assembly: Assembly, env: str) -> None:
    for stack in ("Data", "Training"):
        for r in assembly.template_json(env, stack)["Resources"].values():
            if r["Type"] != "AWS::IAM::Policy":
                continue
            for statement in r["Properties"]["PolicyDocument"]["Statement"]:
                assert not any("*" in action for action in _list(statement["Action"])), statement


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pass_role_hands_the_training_role_to_sagemaker_and_the_import_role_to_bedrock(
    assembly: Assembly, flat: Flat, env: str
) -> None:
    passing = [
        statement
        for stack in ("Data", "Training")
        for statement in statements(flat(assembly.template_json(env, stack)))
        if any(a.startswith("iam:") for a in _list(statement["Action"]))
    ]
    to_sagemaker = {
        "Action": "iam:PassRole",
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        "Effect": "Allow",
        "Resource": "<TrainingJobRole.Arn>",
    }
    to_bedrock = {
        "Action": "iam:PassRole",
        "Condition": {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
        "Effect": "Allow",
        "Resource": "<Serving/ImportRole.Arn>",
    }
    # The training pipeline's role, the evaluate-only pipeline's role, the serving machine's.
    assert passing == [to_sagemaker, to_sagemaker, to_bedrock]
    template = flat(assembly.template_json(env, "Training"))
    holders = [
        (role, statement)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("iam:") for a in _list(statement["Action"]))
        for role in r["Properties"]["Roles"]
    ]
    assert holders == [
        ("<PipelineRole>", to_sagemaker),
        ("<EvaluatePipeline/Role>", to_sagemaker),
        ("<Serving/StateMachine/Role>", to_bedrock),
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_escrow_access_is_read_only_and_this_accounts_only(
    assembly: Assembly, flat: Flat, env: str
) -> None:
    escrow = f"arn:aws:s3:::customer-escrow-{account_of(env)}*"
    grants = {
        (action, target)
        for stack in ("Data", "Training")
        for statement in statements(flat(assembly.template_json(env, stack)))
        for action in _list(statement["Action"])
        for target in _list(statement.get("Resource", []))
        if "escrow" in str(target)
    }
    assert grants == {("s3:ListBucket", escrow), ("s3:GetObject", f"{escrow}/*")}
