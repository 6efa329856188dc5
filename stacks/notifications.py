"""Tell people when a checkpoint is registered or its approval changes.

An EventBridge rule matches `SageMaker Model Package State Change` events of the given model
package groups and publishes them to an SNS topic that anyone with access can subscribe to
(e-mail, chat, a queue). Each environment has one for its group; the toolchain account has one
for the groups of every stage it deploys, whose events the stages forward to its bus. The
topic is encrypted with a key of its own, because the key policy must let the EventBridge
service use it, and the data key should trust no service it does not need to.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
EVENTS = "events.amazonaws.com"


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """Deliver a rule's events to a topic, with no permission attached.

    CDK's own SNS target lets every EventBridge rule (of any account) publish to the topic;
    ApprovalNotifications instead grants publishing to its one rule, by `aws:SourceArn`.
    """

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        del rule, id  # the target needs neither: it grants nothing
        return events.RuleTargetConfig(arn=self._topic.topic_arn)


class ApprovalNotifications(Construct):
    """The key, the topic (`topic`) and the rule (`rule`, named `rule_name`, on the default
    bus) for `model_package_group_names`.

    The rule has a fixed name because the key policy must name the rule's ARN, and a reference
    to the rule would close a loop (rule -> topic -> key -> rule) that CloudFormation refuses.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_names: Sequence[str],
        rule_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        if not model_package_group_names:
            raise ValueError(f"{self.node.path}: name at least one model package group")
        # SNS display names stop at 100 characters: name one group, count several.
        groups = list(model_package_group_names)
        label = groups[0] if len(groups) == 1 else f"{len(groups)} model package groups"
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Encrypts the notifications of {', '.join(groups)}",
            enable_key_rotation=True,
            # Nothing outlives the topic encrypted with this key: SNS keeps no messages.
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"Checkpoints of {label}",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.rule = events.Rule(
            self,
            "StateChangeRule",
            rule_name=rule_name,
            description=f"Registrations and approval changes in {', '.join(groups)}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": groups},
            ),
            targets=[_TopicTarget(self.topic)],
        )
        # EventBridge publishes as its service principal: only on behalf of this rule (the
        # condition guards against another account's rule using this topic).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisRuleToPublish",
                principals=[iam.ServicePrincipal(EVENTS)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.rule_arn}},
            )
        )
        stack = cdk.Stack.of(self)
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
        # Publishing to an encrypted topic needs a data key, which SNS asks for on behalf of
        # EventBridge; this key encrypts nothing else. Pinned, like the topic's statement, to
        # this rule of this account, so no other rule (of any account) can use the key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToPublishEncrypted",
                principals=[iam.ServicePrincipal(EVENTS)],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": rule_arn},
                },
            )
        )
