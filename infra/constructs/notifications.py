"""Where outcomes go: the notifications topic, the task event bus, the dead-letter queues, the alarm topic."""

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from task_common.contract import EVENT_SOURCE, OUTCOME_DETAIL_TYPES

MESSAGE_RETENTION = Duration.days(14)
# Deploy-time choices of who hears the alarms (`cdk deploy -c alarmEmail=ops@example.com`, or
# `-c alarmSubscriptionTopicArn=arn:aws:sns:...` to forward them to an existing topic of the team's).
ALARM_EMAIL_CONTEXT = "alarmEmail"
ALARM_TOPIC_CONTEXT = "alarmSubscriptionTopicArn"


def _queue(scope: Construct, construct_id: str, **kwargs: object) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=MESSAGE_RETENTION,
        **kwargs,  # type: ignore[arg-type]
    )


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        # A customer managed key, because CloudWatch alarms cannot publish to topics under the AWS managed key.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the taskrail notification and alarm topics",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            # SNS stores no messages: once a destroyed stack's topics are gone nothing needs the key, so it is
            # scheduled for deletion with them, after the shortest waiting period (7 days) rather than the 30 default.
            pending_window=Duration.days(7) if removal_policy == RemovalPolicy.DESTROY else None,
        )
        self.topic = sns.Topic(self, "NotificationsTopic", master_key=self.key, enforce_ssl=True)
        self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True)
        self._let_cloudwatch_alarms_publish()
        self._let_cloudwatch_alarms_use_the_key()
        self._subscribe_alarm_recipients()
        self.event_bus = events.EventBus(self, "TaskEventBus", description="TaskSucceeded/TaskFailed/TaskRejected")

        # Failed tasks with their full context: drained by `taskrail replay`.
        self.dead_letter_queue = _queue(self, "TaskDeadLetterQueue")
        # Stream records the pipe could not deliver to the workflow.
        self.pipe_dead_letter_queue = _queue(self, "PipeDeadLetterQueue")
        # Events the rules could not deliver: outcomes to the topic, failed executions to the failure recorder.
        self.dead_letter_queue_for_rules = _queue(self, "EventRuleDeadLetterQueue")
        # A durable copy of every notification: operators and the local demo read outcomes from here.
        self.notifications_archive = _queue(self, "NotificationsArchiveQueue")

        # The workflow announces each outcome once, on the bus; this rule turns it into the notification (the
        # event's detail is the message), so the workflow pays one state transition for both. The target's
        # grant gives EventBridge sns:Publish on the topic and kms:Decrypt/GenerateDataKey* on its key.
        self.outcome_rule = events.Rule(
            self,
            "TaskOutcomeToTopicRule",
            description="Task outcomes on the task bus to the notifications topic",
            event_bus=self.event_bus,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=list(OUTCOME_DETAIL_TYPES)),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_event_path("$.detail"),
                    dead_letter_queue=self.dead_letter_queue_for_rules,
                    retry_attempts=185,
                )
            ],
        )
        self._only_the_outcome_rule_may_publish()
        self.topic.add_subscription(
            # A message SNS cannot deliver after its retries is kept, not dropped ("Amazon SNS dead-letter queues").
            subscriptions.SqsSubscription(
                self.notifications_archive,
                raw_message_delivery=True,
                dead_letter_queue=self.dead_letter_queue_for_rules,
            )
        )

    def _let_cloudwatch_alarms_publish(self) -> None:
        """``enforce_ssl`` gives the topic a policy of its own, which replaces SNS's default policy: without an
        explicit Allow, CloudWatch alarm actions are denied (re:Post, "Why didn't I receive an SNS notification
        for my CloudWatch alarm trigger?"). Only this account's alarms may publish (confused deputy)."""
        stack = Stack.of(self)
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )

    def _only_the_outcome_rule_may_publish(self) -> None:
        """The SnsTopic target allows ``events.amazonaws.com`` to publish with no condition: any rule, of any
        account, that targets the topic could publish to it. EventBridge's SNS permissions page scopes the
        statement with ``aws:SourceArn`` set to the rule ("Using resource-based policies for Amazon EventBridge",
        Amazon SNS permissions). The statement is CDK's own, so it is found by its principal, not by position."""
        policy = self.topic.node.find_child("Policy")
        document = Stack.of(self).resolve(policy.document.to_json())  # type: ignore[attr-defined]
        for index, statement in enumerate(document["Statement"]):
            if statement.get("Principal") == {"Service": "events.amazonaws.com"}:
                cfn = policy.node.default_child
                cfn.add_property_override(  # type: ignore[union-attr]
                    f"PolicyDocument.Statement.{index}.Condition",
                    {"ArnEquals": {"aws:SourceArn": self.outcome_rule.rule_arn}},
                )
                return
        raise AssertionError("the outcome rule's SNS target no longer grants events.amazonaws.com on the topic")

    def _let_cloudwatch_alarms_use_the_key(self) -> None:
        """What a CloudWatch alarm needs to publish to a topic under this key, and no more: kms:Decrypt and
        kms:GenerateDataKey* ("Enable compatibility between event sources from AWS services and encrypted
        topics", Amazon SNS Developer Guide), for this account's alarms only (confused deputy)."""
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )

    def _subscribe_alarm_recipients(self) -> None:
        """``alarm_actions``: the alarm topic, plus the team's existing topic when one is given (an alarm may have
        several actions; SNS cannot subscribe a topic to a topic)."""
        email = self.node.try_get_context(ALARM_EMAIL_CONTEXT)
        topic_arn = self.node.try_get_context(ALARM_TOPIC_CONTEXT)
        self.alarm_actions: list[sns.ITopic] = [self.alarm_topic]
        if email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(str(email)))
        if topic_arn:
            self.alarm_actions.append(sns.Topic.from_topic_arn(self, "AlarmRecipientTopic", str(topic_arn)))
        if not email and not topic_arn:
            Annotations.of(self).add_warning_v2(
                "taskrail:alarms-unsubscribed",
                f"The alarm topic has no subscriber: deploy with -c {ALARM_EMAIL_CONTEXT}=you@example.com "
                f"(or -c {ALARM_TOPIC_CONTEXT}=<topic ARN>) so that alarms reach a person.",
            )
