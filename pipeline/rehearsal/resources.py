"""Creating each resource kind of the project's stacks in the local endpoint, and what the
created stage looks like (`LocalStage`). One `create_<Service>_<Type>` method per CloudFormation
type; each takes the resolved properties and returns the physical name (what Ref gives) and the
attributes (what Fn::GetAtt gives).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.templates import StackTemplate

# Types that only grant, log or notify: they do not change what a pipeline run does locally.
NOT_APPLIED = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::KMS::Alias",
        "AWS::Lambda::Permission",
        "AWS::SNS::TopicPolicy",
        "AWS::Events::Rule",
        "AWS::CDK::Metadata",
    }
)


@dataclass
class DeployedFunction:
    """A Lambda function created locally: where its code is and which handler it runs."""

    arn: str
    handler: str
    asset_dir: Path
    environment: dict[str, str]


@dataclass
class LocalStage:
    """What a stage looks like once created in the local endpoint."""

    account: str
    region: str
    physical: dict[str, str] = field(default_factory=dict)  # "<stack>/<logical id>" -> name
    functions: dict[str, DeployedFunction] = field(default_factory=dict)  # by ARN
    outputs: dict[str, str] = field(default_factory=dict)  # "<stack>.<output>" -> value
    not_applied: list[str] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)  # name -> deployed definition

    def output(self, suffix: str) -> str:
        """The one stack output whose name ends with `suffix`."""
        found = [v for k, v in self.outputs.items() if k.split(".", 1)[1].startswith(suffix)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} stack outputs named {suffix}*: {sorted(self.outputs)}")
        return found[0]


def _zip_dir(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def physical_name(stack: str, logical_id: str, limit: int = 63) -> str:
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]", "", f"{stack}-{logical_id}".lower())
    return f"{base[: limit - 9]}-{digest}"


class ResourceCreator:
    """Creates resources with `session`'s clients and records functions in `stage`."""

    def __init__(self, session: Any, stage: LocalStage) -> None:
        self.session = session
        self.stage = stage

    def create_KMS_Key(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        key = self.session.client("kms").create_key(
            Description=properties.get("Description", logical_id)
        )["KeyMetadata"]
        return key["KeyId"], {"Arn": key["Arn"]}

    def create_S3_Bucket(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        s3 = self.session.client("s3")
        name = properties.get("BucketName") or physical_name(stack.name, logical_id)
        s3.create_bucket(Bucket=name)
        if properties.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "BucketEncryption" in properties:
            # CloudFormation's shape of the rules differs from the S3 API's.
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **(
                        {"BucketKeyEnabled": rule["BucketKeyEnabled"]}
                        if "BucketKeyEnabled" in rule
                        else {}
                    ),
                }
                for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        return name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.stage.region}.amazonaws.com",
        }

    def create_IAM_Role(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties.get("RoleName") or physical_name(stack.name, logical_id, 64)
        role = self.session.client("iam").create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        )["Role"]
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def create_Lambda_Function(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], metadata: Any
    ) -> tuple[str, dict[str, str]]:
        asset = metadata.get("aws:asset:path")
        if not asset:
            raise DefinitionError(f"{stack.name}/{logical_id}: no aws:asset:path in its metadata")
        asset_dir = stack.directory / asset
        name = properties.get("FunctionName") or physical_name(stack.name, logical_id, 64)
        environment = properties.get("Environment", {}).get("Variables", {})
        function = self.session.client("lambda").create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Role=properties["Role"],
            Handler=properties["Handler"],
            Code={"ZipFile": _zip_dir(asset_dir)},
            Timeout=properties.get("Timeout", 3),
            MemorySize=properties.get("MemorySize", 128),
            Environment={"Variables": environment},
        )
        arn = function["FunctionArn"]
        self.stage.functions[arn] = DeployedFunction(
            arn=arn, handler=properties["Handler"], asset_dir=asset_dir, environment=environment
        )
        return name, {"Arn": arn}

    def create_Logs_LogGroup(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        logs = self.session.client("logs")
        name = properties.get("LogGroupName") or physical_name(stack.name, logical_id, 512)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in properties:
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(properties["RetentionInDays"])
            )
        arn = f"arn:aws:logs:{self.stage.region}:{self.stage.account}:log-group:{name}:*"
        return name, {"Arn": arn}

    def create_SNS_Topic(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties.get("TopicName") or physical_name(stack.name, logical_id, 256)
        attributes = (
            {"KmsMasterKeyId": properties["KmsMasterKeyId"]}
            if "KmsMasterKeyId" in properties
            else {}
        )
        arn = self.session.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        # CloudFormation's Ref of a topic is its ARN.
        return arn, {"TopicArn": arn, "TopicName": name}

    def create_SageMaker_ModelPackageGroup(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties["ModelPackageGroupName"]
        group = self.session.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=properties.get("ModelPackageGroupDescription", ""),
        )
        return name, {"ModelPackageGroupArn": group["ModelPackageGroupArn"]}

    def create_SageMaker_MlflowTrackingServer(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        # moto has no MLflow API: the server is only named here; the rehearsal maps its ARN to
        # a local `mlflow server` (pipeline.rehearsal.mlflow_server).
        name = properties["TrackingServerName"]
        arn = (
            f"arn:aws:sagemaker:{self.stage.region}:{self.stage.account}:"
            f"mlflow-tracking-server/{name}"
        )
        return name, {"TrackingServerArn": arn}

    def create_SageMaker_Pipeline(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        definition = properties["PipelineDefinition"]
        body = definition.get("PipelineDefinitionBody")
        if not isinstance(body, str):
            raise DefinitionError(f"{stack.name}/{logical_id}: only PipelineDefinitionBody works")
        # A resolved body must be JSON, or a reference was left unresolved.
        _refuse_empty_defaults(f"{stack.name}/{logical_id}", json.loads(body))
        name = properties["PipelineName"]
        pipeline = self.session.client("sagemaker").create_pipeline(
            PipelineName=name, PipelineDefinition=body, RoleArn=properties["RoleArn"]
        )
        return name, {"PipelineArn": pipeline["PipelineArn"]}

    def create_StepFunctions_StateMachine(
        self, stack: StackTemplate, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        # The resolved definition is kept: the rehearsal runs it (pipeline/rehearsal/serving.py).
        definition = properties["DefinitionString"]
        json.loads(definition)  # a reference left unresolved would not be JSON
        name = properties.get("StateMachineName") or physical_name(stack.name, logical_id, 80)
        arn = self.session.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=properties["RoleArn"]
        )["stateMachineArn"]
        self.stage.state_machines[name] = definition
        return arn, {"Arn": arn, "Name": name}


def _refuse_empty_defaults(where: str, body: Any) -> None:
    """Refuse a parameter whose default is "", as SageMaker is reported to (moto accepts it).

    The service refuses an empty parameter value at StartPipelineExecution (length minimum 1,
    aws/sagemaker-python-sdk issue 4016) and users report CreatePipeline failing on an empty
    default (issue 3564). Undocumented, so the rehearsal takes the strict side.
    """
    parameters = body.get("Parameters", []) if isinstance(body, dict) else []
    empty = [p.get("Name", "?") for p in parameters if p.get("DefaultValue") == ""]
    if empty:
        raise DefinitionError(
            f"{where}: parameter(s) {', '.join(empty)} have an empty default, which SageMaker "
            "refuses; give each a non-empty default (e.g. none for no validation data)"
        )
