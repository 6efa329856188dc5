"""Create one synthesized stage's resources in a local AWS endpoint, from the templates in cdk.out.

This is a small deployer for the resource types this project's stacks use. It resolves the
CloudFormation intrinsics CDK emits (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split,
Fn::ImportValue, pseudo parameters) against the resources it created, so the pipeline body that
reaches the endpoint is the body `cdk deploy` would send, with references resolved. Permission and
policy resources are recorded, not applied: moto does not enforce IAM. A resource type it does not
know stops the deployment with its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.graph import dependency_order

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
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


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

    def output(self, suffix: str) -> str:
        """The one stack output whose name ends with `suffix`."""
        found = [v for k, v in self.outputs.items() if k.split(".", 1)[1].startswith(suffix)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} stack outputs named {suffix}*: {sorted(self.outputs)}")
        return found[0]


@dataclass
class _Stack:
    name: str
    template: dict[str, Any]
    directory: Path
    dependencies: list[str]


def stage_stacks(cdk_out: Path, stage: str) -> list[_Stack]:
    """The stage's stacks from the cloud assembly, in dependency order."""
    manifest_path = cdk_out / f"assembly-{stage}" / "manifest.json"
    if not manifest_path.is_file():
        raise DefinitionError(f"{manifest_path} not found: run `make synth` first")
    directory = manifest_path.parent
    artifacts = json.loads(manifest_path.read_text(encoding="utf-8"))["artifacts"]
    stacks = {
        name: _Stack(
            name=name,
            template=json.loads(
                (directory / artifact["properties"]["templateFile"]).read_text(encoding="utf-8")
            ),
            directory=directory,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts],
        )
        for name, artifact in artifacts.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    # Ties keep the manifest's order, which is deterministic.
    needs = {name: stack.dependencies for name, stack in stacks.items()}
    return [stacks[name] for name in dependency_order(needs, f"the stacks of {manifest_path}")]


def _zip_dir(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _physical_name(stack: str, logical_id: str, limit: int = 63) -> str:
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]", "", f"{stack}-{logical_id}".lower())
    return f"{base[: limit - 9]}-{digest}"


class _Deployer:
    def __init__(self, session: Any, stage: LocalStage) -> None:
        self.session = session
        self.stage = stage
        self.exports: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}  # "<stack>/<id>" -> attributes

    # -- intrinsics -------------------------------------------------------------------------------

    def resolve(self, stack: _Stack, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Join": self._join,
                "Fn::Select": self._select,
                "Fn::Split": self._split,
                "Fn::ImportValue": self._import_value,
                "Fn::Sub": self._sub,
            }.get(key)
            if intrinsic is not None:
                return intrinsic(stack, argument)
            if key.startswith("Fn::") or key == "Condition":
                raise DefinitionError(f"{stack.name}: intrinsic {key} is not supported locally")
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def _get_att(self, stack: _Stack, argument: Any) -> str:
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return self._attribute(stack, logical_id, attribute)

    def _join(self, stack: _Stack, argument: Any) -> str:
        separator, items = argument
        return str(separator).join(str(self.resolve(stack, i)) for i in items)

    def _select(self, stack: _Stack, argument: Any) -> Any:
        index, items = argument
        return self.resolve(stack, items)[int(self.resolve(stack, index))]

    def _split(self, stack: _Stack, argument: Any) -> list[str]:
        separator, text = argument
        return str(self.resolve(stack, text)).split(separator)

    def _import_value(self, stack: _Stack, argument: Any) -> str:
        name = self.resolve(stack, argument)
        if name not in self.exports:
            raise DefinitionError(f"{stack.name}: no stack exports {name!r}")
        return self.exports[name]

    def _sub(self, stack: _Stack, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(stack, variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._attribute(stack, logical_id, attribute)
            return str(self._ref(stack, name))

        return _SUB.sub(replace, text)

    def _ref(self, stack: _Stack, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.stage.account,
            "AWS::Region": self.stage.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
        }
        if name in pseudo:
            return pseudo[name]
        key = f"{stack.name}/{name}"
        if key in self.stage.physical:
            return self.stage.physical[key]
        parameter = stack.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        raise DefinitionError(f"{stack.name}: Ref {name} has no local value (created later?)")

    def _attribute(self, stack: _Stack, logical_id: str, attribute: str) -> str:
        attributes = self.attributes.get(f"{stack.name}/{logical_id}", {})
        if attribute not in attributes:
            raise DefinitionError(
                f"{stack.name}: Fn::GetAtt {logical_id}.{attribute} has no local value"
            )
        return attributes[attribute]

    # -- resources --------------------------------------------------------------------------------

    def deploy(self, stack: _Stack) -> None:
        for logical_id, resource in self._in_order(stack):
            kind = resource["Type"]
            if kind in NOT_APPLIED or kind.startswith("Custom::"):
                # Recorded with a name, so a Ref to it resolves; it has no attributes to read.
                self.stage.not_applied.append(f"{stack.name}/{logical_id} ({kind})")
                self.stage.physical[f"{stack.name}/{logical_id}"] = _physical_name(
                    stack.name, logical_id
                )
                continue
            properties = self.resolve(stack, resource.get("Properties", {}))
            create = getattr(self, "_create_" + kind.replace("AWS::", "").replace("::", "_"), None)
            if create is None:
                raise DefinitionError(
                    f"{stack.name}/{logical_id}: resource type {kind} is not supported by the "
                    "local rehearsal (pipeline/rehearsal/stack.py)"
                )
            key = f"{stack.name}/{logical_id}"
            physical, attributes = create(
                stack, logical_id, properties, resource.get("Metadata", {})
            )
            self.stage.physical[key] = physical
            self.attributes[key] = attributes
        for name, output in stack.template.get("Outputs", {}).items():
            value = str(self.resolve(stack, output["Value"]))
            self.stage.outputs[f"{stack.name}.{name}"] = value
            export = output.get("Export", {}).get("Name")
            if export is not None:
                self.exports[str(self.resolve(stack, export))] = value

    @staticmethod
    def _in_order(stack: _Stack) -> Iterator[tuple[str, dict[str, Any]]]:
        resources: dict[str, dict[str, Any]] = stack.template.get("Resources", {})

        def references(value: Any) -> set[str]:
            found: set[str] = set()
            if isinstance(value, dict):
                if "Ref" in value and isinstance(value["Ref"], str):
                    found.add(value["Ref"])
                if "Fn::GetAtt" in value:
                    target = value["Fn::GetAtt"]
                    found.add(target[0] if isinstance(target, list) else target.split(".")[0])
                if "Fn::Sub" in value:
                    text = value["Fn::Sub"]
                    text = text if isinstance(text, str) else text[0]
                    found.update(m.split(".")[0] for m in _SUB.findall(text))
                for item in value.values():
                    found |= references(item)
            elif isinstance(value, list):
                for item in value:
                    found |= references(item)
            return found

        needs = {
            logical_id: (references(r.get("Properties", {})) | set(_as_list(r.get("DependsOn"))))
            & set(resources)
            for logical_id, r in resources.items()
        }
        for logical_id in dependency_order(needs, f"the resources of {stack.name}"):
            yield logical_id, resources[logical_id]

    def _create_KMS_Key(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        key = self.session.client("kms").create_key(
            Description=properties.get("Description", logical_id)
        )["KeyMetadata"]
        return key["KeyId"], {"Arn": key["Arn"]}

    def _create_S3_Bucket(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        s3 = self.session.client("s3")
        name = properties.get("BucketName") or _physical_name(stack.name, logical_id)
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

    def _create_IAM_Role(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties.get("RoleName") or _physical_name(stack.name, logical_id, 64)
        role = self.session.client("iam").create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        )["Role"]
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _create_Lambda_Function(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], metadata: Any
    ) -> tuple[str, dict[str, str]]:
        asset = metadata.get("aws:asset:path")
        if not asset:
            raise DefinitionError(f"{stack.name}/{logical_id}: no aws:asset:path in its metadata")
        asset_dir = stack.directory / asset
        name = properties.get("FunctionName") or _physical_name(stack.name, logical_id, 64)
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

    def _create_Logs_LogGroup(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        logs = self.session.client("logs")
        name = properties.get("LogGroupName") or _physical_name(stack.name, logical_id, 512)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in properties:
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(properties["RetentionInDays"])
            )
        arn = f"arn:aws:logs:{self.stage.region}:{self.stage.account}:log-group:{name}:*"
        return name, {"Arn": arn}

    def _create_SNS_Topic(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties.get("TopicName") or _physical_name(stack.name, logical_id, 256)
        attributes = (
            {"KmsMasterKeyId": properties["KmsMasterKeyId"]}
            if "KmsMasterKeyId" in properties
            else {}
        )
        arn = self.session.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        # CloudFormation's Ref of a topic is its ARN.
        return arn, {"TopicArn": arn, "TopicName": name}

    def _create_SageMaker_ModelPackageGroup(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
    ) -> tuple[str, dict[str, str]]:
        name = properties["ModelPackageGroupName"]
        group = self.session.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=properties.get("ModelPackageGroupDescription", ""),
        )
        return name, {"ModelPackageGroupArn": group["ModelPackageGroupArn"]}

    def _create_SageMaker_Pipeline(
        self, stack: _Stack, logical_id: str, properties: dict[str, Any], _meta: Any
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


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def deploy_stage(cdk_out: Path, stage: str, session: Any) -> LocalStage:
    """Create every resource of the stage's stacks in the endpoint `session` points at."""
    account = session.client("sts").get_caller_identity()["Account"]
    local = LocalStage(account=account, region=session.region_name)
    deployer = _Deployer(session, local)
    for stack in stage_stacks(cdk_out, stage):
        deployer.deploy(stack)
    return local
