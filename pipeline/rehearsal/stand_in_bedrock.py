"""A stand-in for the Bedrock calls moto lacks, served on the local endpoint (a WSGI layer).

moto 5.2.5 implements neither CreateCustomModel nor CreateCustomModelDeployment. This layer
answers, as Bedrock's REST-JSON protocol does, CreateCustomModel, GetCustomModel,
DeleteCustomModel, CreateCustomModelDeployment, GetCustomModelDeployment,
DeleteCustomModelDeployment, ListCustomModelDeployments, ListTagsForResource and bedrock-runtime's
Converse against a deployment ARN; every other request goes on to moto. Each request is checked
against botocore's service model (pipeline/rehearsal/bedrock_requests.py: required members,
lengths, patterns, enums) and the documented constraints: the source is an escrow
checkpoint a (stand-in) training job made, the role exists and trusts bedrock.amazonaws.com, the
key exists. A client request token seen before answers with what it made (idempotency).

Statuses move on a clock (`SimulatedClock`) that the rehearsal's state machine advances at each
Wait: a model is Creating for `IMPORT_SECONDS`, then Active (or Failed when its checkpoint is not
one the stand-in trainer wrote); a deployment Creating for `DEPLOY_SECONDS`, then Active. Converse
answers with a canned, deterministic text that names the served model.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.model import OperationModel

from pipeline.rehearsal.bedrock_requests import BedrockError, check, raw_path, route, snake

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

IMPORT_SECONDS = 600  # about 10 minutes in AWS's samples
DEPLOY_SECONDS = 300  # reports range from 2 to 45 minutes
_SERVICE = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
_MODELS = botocore.session.get_session()


class SimulatedClock:
    """Seconds since the rehearsal began, advanced by the state machine's waits (no sleeping)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds

    def now(self) -> float:
        return self.seconds


@dataclass
class _Model:
    arn: str
    name: str
    source: str
    role: str
    key: str | None
    tags: list[dict[str, str]]
    created: float
    token: str | None
    fails: str | None  # the failure message once the import ends, if it fails

    def status(self, now: float) -> str:
        if now - self.created < IMPORT_SECONDS:
            return "Creating"
        return "Failed" if self.fails else "Active"


@dataclass
class _Deployment:
    arn: str
    name: str
    model_arn: str
    created: float
    token: str | None
    tags: list[dict[str, str]] = field(default_factory=list)

    def status(self, now: float) -> str:
        return "Creating" if now - self.created < DEPLOY_SECONDS else "Active"


class StandInBedrock:
    """The WSGI layer (see the module docstring). `checkpoints` returns the checkpoint URIs the
    stand-in trainer made; `url` is the endpoint's, for checking roles and keys in moto."""

    def __init__(self, app: WsgiApp, url: str, region: str = "us-east-1") -> None:
        self.app = app
        self.url = url
        self.region = region
        self.clock = SimulatedClock()
        self.checkpoints: Callable[[], Iterable[str]] = lambda: ()
        self.models: dict[str, _Model] = {}  # by name
        self.deployments: dict[str, _Deployment] = {}  # by name
        self.conversations: list[tuple[str, str]] = []  # (deployment ARN, prompt)
        self._bedrock = _MODELS.get_service_model("bedrock")
        self._runtime = _MODELS.get_service_model("bedrock-runtime")
        self.access_key = "stand-in"
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.models.clear()
            self.deployments.clear()
            self.conversations.clear()
            self.clock = SimulatedClock()

    # -- routing ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match and match.group(3) == "bedrock":
            # moto keeps each account's resources apart by the caller's access key.
            self.access_key, self.region = match.group(1), match.group(2)
            found = route(environ["REQUEST_METHOD"], raw_path(environ))
            if found is not None:
                return self._answer(environ, start_response, *found)
        return self.app(environ, start_response)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        operation: str,
        uri: dict[str, Any],
    ) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        model = self._runtime if operation == "Converse" else self._bedrock
        op: OperationModel = model.operation_model(operation)
        request = {**body, **uri}
        try:
            check(op.input_shape, request, operation)
            with self._lock:
                status, answer = getattr(self, "_" + snake(operation))(request)
        except BedrockError as error:
            start_response(
                f"{error.status} Error",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.kind)],
            )
            return [json.dumps({"message": error.message}).encode()]
        start_response(f"{status} OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    # -- custom models ----------------------------------------------------------------------------

    def _create_custom_model(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name, token = request["modelName"], request.get("clientRequestToken")
        for model in self.models.values():
            if token and model.token == token:
                if model.name != name:
                    raise BedrockError(
                        409, "ConflictException", f"token {token} was used for {model.name}"
                    )
                return 202, {"modelArn": model.arn}
        if name in self.models:
            raise BedrockError(409, "ConflictException", f"a custom model named {name} exists")
        source = request.get("modelSourceConfig", {}).get("s3DataSource", {}).get("s3Uri")
        if not source:
            raise BedrockError(
                400, "ValidationException", "modelSourceConfig.s3DataSource.s3Uri is required"
            )
        if not re.match(r"s3://customer-escrow-[0-9]{12}-", source):
            raise BedrockError(
                400, "ValidationException", f"{source} is not a SageMaker escrow checkpoint"
            )
        if "roleArn" not in request:
            raise BedrockError(
                400, "ValidationException", "roleArn is required to read the checkpoint"
            )
        self._require_role(request["roleArn"])
        if "modelKmsKeyArn" in request:
            self._require_key(request["modelKmsKeyArn"])
        account = request["roleArn"].split(":")[4]
        suffix = hashlib.sha256(name.encode()).hexdigest()[:12]
        known = set(self.checkpoints())
        self.models[name] = _Model(
            arn=f"arn:aws:bedrock:{self.region}:{account}:custom-model/imported/{suffix}",
            name=name,
            source=source,
            role=request["roleArn"],
            key=request.get("modelKmsKeyArn"),
            tags=list(request.get("modelTags", [])),
            created=self.clock.now(),
            token=token,
            fails=None if source in known else f"no checkpoint at {source}",
        )
        return 202, {"modelArn": self.models[name].arn}

    def _model(self, identifier: str) -> _Model:
        for model in self.models.values():
            if identifier in (model.name, model.arn):
                return model
        raise BedrockError(404, "ResourceNotFoundException", f"custom model {identifier} not found")

    def _get_custom_model(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = self._model(request["modelIdentifier"])
        status = model.status(self.clock.now())
        answer = {
            "modelArn": model.arn,
            "modelName": model.name,
            "creationTime": "2026-01-01T00:00:00Z",
            "modelStatus": status,
        }
        if model.key:
            answer["modelKmsKeyArn"] = model.key
        if status == "Failed" and model.fails:
            answer["failureMessage"] = model.fails
        return 200, answer

    def _delete_custom_model(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = self._model(request["modelIdentifier"])
        if any(d.model_arn == model.arn for d in self.deployments.values()):
            raise BedrockError(409, "ConflictException", f"{model.name} has a deployment")
        del self.models[model.name]
        return 200, {}

    # -- deployments ------------------------------------------------------------------------------

    def _create_custom_model_deployment(
        self, request: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        name, token = request["modelDeploymentName"], request.get("clientRequestToken")
        for deployment in self.deployments.values():
            if token and deployment.token == token:
                return 202, {"customModelDeploymentArn": deployment.arn}
        if name in self.deployments:
            raise BedrockError(409, "ConflictException", f"a deployment named {name} exists")
        model = self._model(request["modelArn"])
        if model.status(self.clock.now()) != "Active":
            raise BedrockError(400, "ValidationException", f"{model.arn} is not Active")
        account = model.arn.split(":")[4]
        suffix = hashlib.sha256(f"deployment/{name}".encode()).hexdigest()[:12]
        self.deployments[name] = _Deployment(
            arn=f"arn:aws:bedrock:{self.region}:{account}:custom-model-deployment/{suffix}",
            name=name,
            model_arn=model.arn,
            created=self.clock.now(),
            token=token,
            tags=list(request.get("tags", [])),
        )
        return 202, {"customModelDeploymentArn": self.deployments[name].arn}

    def _deployment(self, identifier: str) -> _Deployment:
        for deployment in self.deployments.values():
            if identifier in (deployment.name, deployment.arn):
                return deployment
        raise BedrockError(404, "ResourceNotFoundException", f"deployment {identifier} not found")

    def _get_custom_model_deployment(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        deployment = self._deployment(request["customModelDeploymentIdentifier"])
        return 200, {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.model_arn,
            "createdAt": "2026-01-01T00:00:00Z",
            "status": deployment.status(self.clock.now()),
        }

    def _delete_custom_model_deployment(
        self, request: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        deployment = self._deployment(request["customModelDeploymentIdentifier"])
        del self.deployments[deployment.name]
        return 200, {}

    def _list_custom_model_deployments(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        part = request.get("nameContains", "")
        summaries = [
            {
                "customModelDeploymentArn": d.arn,
                "customModelDeploymentName": d.name,
                "modelArn": d.model_arn,
                "createdAt": "2026-01-01T00:00:00Z",
                "status": d.status(self.clock.now()),
            }
            for d in self.deployments.values()
            if part in d.name
        ]
        return 200, {"modelDeploymentSummaries": summaries}

    def _list_tags_for_resource(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        arn = request["resourceARN"]
        tagged = [(m.arn, m.tags) for m in self.models.values()]
        tagged += [(d.arn, d.tags) for d in self.deployments.values()]
        for resource_arn, tags in tagged:
            if resource_arn == arn:
                return 200, {"tags": list(tags)}
        raise BedrockError(404, "ResourceNotFoundException", f"{arn} not found")

    def _converse(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        deployment = self._deployment(request["modelId"])
        if (
            not request["modelId"].startswith("arn:")
            or deployment.status(self.clock.now()) != "Active"
        ):
            raise BedrockError(
                400, "ValidationException", f"{request['modelId']} is not an Active deployment ARN"
            )
        model = self._model(deployment.model_arn)
        prompt = " ".join(
            block.get("text", "") for block in request.get("messages", [{}])[-1].get("content", [])
        )
        self.conversations.append((deployment.arn, prompt))
        text = f"[stand-in for {model.name}, from {model.source}] You asked: {prompt.strip()}"
        return 200, {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": len(prompt.split()),
                "outputTokens": len(text.split()),
                "totalTokens": len(prompt.split()) + len(text.split()),
            },
            "metrics": {"latencyMs": 1},
        }

    # -- checks against the rest of the endpoint --------------------------------------------------

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key="stand-in",  # noqa: S106 - the local endpoint takes any
        )

    def _require_role(self, arn: str) -> None:
        try:
            role = self._client("iam").get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
        except self._client("iam").exceptions.NoSuchEntityException:
            raise BedrockError(400, "ValidationException", f"role {arn} does not exist") from None
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
        if "bedrock.amazonaws.com" not in json.dumps(trust):
            raise BedrockError(
                400, "ValidationException", f"role {arn} does not trust bedrock.amazonaws.com"
            )

    def _require_key(self, arn: str) -> None:
        try:
            self._client("kms").describe_key(KeyId=arn)
        except Exception:  # noqa: BLE001 - any failure means Bedrock could not use the key
            raise BedrockError(400, "ValidationException", f"key {arn} is not usable") from None
