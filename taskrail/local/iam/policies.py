"""The synthesized template's policies, resolved to local ARNs: who may do what, as the deployed stack would say.

* **Identity policies** per role: the role's inline ``Policies``, every ``AWS::IAM::Policy`` and
  ``AWS::IAM::ManagedPolicy`` that names the role in ``Roles``, and customer managed policies in
  ``ManagedPolicyArns`` that the template defines. An AWS managed policy (``arn:aws:iam::aws:policy/...``) has no
  document in the template: it is recorded in :attr:`TemplatePolicies.unresolved` and grants nothing locally (the
  one the template attaches, ``AmazonAPIGatewayPushToCloudWatchLogs``, belongs to API Gateway's logging role,
  which no local component acts as).
* **Resource policies**: ``AWS::S3::BucketPolicy`` (for the bucket and its objects), ``AWS::SQS::QueuePolicy``,
  ``AWS::SNS::TopicPolicy``, each ``AWS::KMS::Key``'s ``KeyPolicy``, and each ``AWS::Lambda::Permission`` (a
  statement of its function's or alias's policy).

Intrinsics (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``/``Fn::Split``) are resolved by the
provisioner's :class:`taskrail.local.provision.Resolver` (the values the local resources really have). A KMS key
(not created locally) gets the ARN it would have; any other attribute the local stack does not provision resolves
to ``taskrail-unprovisioned:<LogicalId>.<Attribute>``: no local request addresses it, so such a grant is kept
(and reported as unused) but never matches by accident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from taskrail.local.iam.evaluate import Policy, PolicyKind
from taskrail.local.provision import LocalResources, Resolver
from taskrail.local.region import ACCOUNT_ID, REGION

__all__ = ["Grant", "TemplatePolicies"]

Resolve = Callable[[Any], Any]
RESOURCE = PolicyKind.RESOURCE
UNPROVISIONED = "taskrail-unprovisioned:"


class PolicyResolver(Resolver):
    """The provisioner's resolver, with a marker for the attributes of resources the local stack does not create;
    a KMS key (not created locally: nothing encrypts locally) gets the ARN it would have, its id derived from
    its logical id, so a denial names ``arn:aws:kms:REGION:ACCOUNT:key/<id>`` as on AWS."""

    def __init__(self, resources: LocalResources, keys: Iterable[str] = ()) -> None:
        super().__init__(resources)
        self._keys = {k: str(uuid.uuid5(uuid.NAMESPACE_URL, f"taskrail-local-key:{k}")) for k in keys}

    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return super()._attribute(logical_id, attribute)
        except KeyError:
            if logical_id in self._keys and attribute in ("Arn", "Ref", "KeyId"):
                key_id = self._keys[logical_id]
                return key_id if attribute != "Arn" else f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}"
            return f"{UNPROVISIONED}{logical_id}.{attribute}"


@dataclass(frozen=True)
class Grant:
    """One statement of one policy: what ``taskrail iam`` reports as used or never used."""

    policy: str
    statement: int
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _queue_arn(url: str) -> str:
    if url.startswith("arn:"):
        return url
    parts = [p for p in urlsplit(url).path.split("/") if p]
    host = urlsplit(url).hostname or ""
    region = host.split(".")[1] if host.startswith("sqs.") else "us-east-1"
    return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"


@dataclass
class TemplatePolicies:
    identity: dict[str, list[Policy]] = field(default_factory=dict)  # role ARN -> policies
    resource: dict[str, list[Policy]] = field(default_factory=dict)  # resource ARN -> policies
    role_ids: dict[str, str] = field(default_factory=dict)  # role ARN -> logical id
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # role ARN -> AWS managed policy ARNs
    keys: dict[str, str] = field(default_factory=dict)  # topic/queue ARN -> the KMS key that encrypts it
    _role_by_name: dict[str, str] = field(default_factory=dict, repr=False)
    _managed: dict[str, Policy] = field(default_factory=dict, repr=False)
    _grants: dict[tuple[str, int], Grant] = field(default_factory=dict, repr=False)

    @property
    def role_arns(self) -> list[str]:
        return list(self.role_ids)

    def identity_policies(self, role_arn: str | None) -> list[Policy]:
        return list(self.identity.get(role_arn or "", []))

    def resource_policies(self, resource_arn: str) -> list[Policy]:
        """The policies on the resource ``resource_arn`` addresses (an object's bucket's, a queue's, ...)."""
        if resource_arn.startswith("arn:aws:s3:::"):
            bucket = resource_arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
            return list(self.resource.get(f"arn:aws:s3:::{bucket}", []))
        return list(self.resource.get(resource_arn, []))

    def grant_at(self, policy: str, index: int) -> Grant | None:
        """The statement ``policy[index]`` (as an allowed decision names it), or None."""
        if not self._grants:
            self._grants.update({(g.policy, g.statement): g for g in self.grants()})
        return self._grants.get((policy, index))

    def grants(self) -> list[Grant]:
        seen: dict[tuple[str, int], Grant] = {}
        for policies in (*self.identity.values(), *self.resource.values()):
            for policy in policies:
                for index, statement in enumerate(policy.statements):
                    actions = _as_list(statement.get("Action") or statement.get("NotAction"))
                    resources = _as_list(statement.get("Resource") or statement.get("NotResource"))
                    seen[(policy.name, index)] = Grant(
                        policy.name, index, str(statement.get("Effect")),
                        tuple(map(str, actions)), tuple(map(str, resources)),
                    )  # fmt: skip
        return list(seen.values())

    @classmethod
    def from_template(cls, template: Mapping[str, Any], local: LocalResources) -> TemplatePolicies:
        resources: Mapping[str, Any] = template.get("Resources", {})
        resolve: Resolve = PolicyResolver(local, [k for k, r in resources.items() if r.get("Type") == "AWS::KMS::Key"])
        policies = cls()
        for logical_id, resource in resources.items():
            if resource.get("Type") == "AWS::IAM::Role":
                arn = str(resolve({"Fn::GetAtt": [logical_id, "Arn"]}))
                policies.role_ids[arn] = logical_id
                policies._role_by_name[str(resolve({"Ref": logical_id}))] = arn
                policies.identity[arn] = []
        for logical_id, resource in resources.items():
            if resource.get("Type") == "AWS::IAM::ManagedPolicy":
                document = resolve(resource["Properties"]["PolicyDocument"])
                policies._managed[logical_id] = Policy(logical_id, document, PolicyKind.IDENTITY)
        for logical_id, resource in resources.items():
            reader = _READERS.get(str(resource.get("Type")))
            if reader is not None:
                reader(policies, logical_id, resource.get("Properties", {}), resolve)
        return policies

    def _read_role(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        arn = str(resolve({"Fn::GetAtt": [logical_id, "Arn"]}))
        for inline in props.get("Policies", []):
            name = f"{logical_id}/{inline['PolicyName']}"
            self.identity[arn].append(Policy(name, resolve(inline["PolicyDocument"])))
        for raw in props.get("ManagedPolicyArns", []):
            ref = raw.get("Ref") if isinstance(raw, dict) else None
            if ref in self._managed:
                self.identity[arn].append(self._managed[ref])
            else:
                self.unresolved.setdefault(arn, []).append(str(resolve(raw)))

    def _read_policy(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        policy = self._managed.get(logical_id) or Policy(logical_id, resolve(props["PolicyDocument"]))
        for role in props.get("Roles", []):
            role_arn = self._role_by_name.get(str(resolve(role)))
            if role_arn is not None:
                self.identity[role_arn].append(policy)

    def _read_bucket_policy(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        bucket = str(resolve(props["Bucket"]))
        self._add_resource(f"arn:aws:s3:::{bucket}", Policy(logical_id, resolve(props["PolicyDocument"]), RESOURCE))

    def _read_queue_policy(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        document = resolve(props["PolicyDocument"])
        for queue in props.get("Queues", []):
            self._add_resource(_queue_arn(str(resolve(queue))), Policy(logical_id, document, RESOURCE))

    def _read_topic_policy(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        document = resolve(props["PolicyDocument"])
        for topic in props.get("Topics", []):
            self._add_resource(str(resolve(topic)), Policy(logical_id, document, RESOURCE))

    def _read_key(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        key_arn = str(resolve({"Fn::GetAtt": [logical_id, "Arn"]}))
        document = resolve(props["KeyPolicy"])
        self._add_resource(key_arn, Policy(logical_id, document, RESOURCE, is_key_policy=True))

    def _read_topic(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        if props.get("KmsMasterKeyId"):
            self.keys[str(resolve({"Ref": logical_id}))] = str(resolve(props["KmsMasterKeyId"]))

    def _read_queue(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        if props.get("KmsMasterKeyId"):
            self.keys[str(resolve({"Fn::GetAtt": [logical_id, "Arn"]}))] = str(resolve(props["KmsMasterKeyId"]))

    def _read_lambda_permission(self, logical_id: str, props: Mapping[str, Any], resolve: Resolve) -> None:
        """``AWS::Lambda::Permission``: one statement of the function's (or alias's) resource policy, as Lambda's
        AddPermission writes it ("Viewing resource-based IAM policies in Lambda", Lambda Developer Guide): a service
        principal, or an account; ``SourceArn`` as ``ArnLike AWS:SourceArn``, ``SourceAccount`` as ``StringEquals``."""
        function = str(resolve(props["FunctionName"]))
        function_arn = (
            function if function.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"
        )
        principal = str(resolve(props["Principal"]))
        statement: dict[str, Any] = {
            "Sid": logical_id,
            "Effect": "Allow",
            "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
            "Action": str(resolve(props["Action"])),
            "Resource": function_arn,
        }
        conditions: dict[str, Any] = {}
        if props.get("SourceArn") is not None:
            conditions["ArnLike"] = {"AWS:SourceArn": str(resolve(props["SourceArn"]))}
        if props.get("SourceAccount") is not None:
            conditions["StringEquals"] = {"AWS:SourceAccount": str(resolve(props["SourceAccount"]))}
        if conditions:
            statement["Condition"] = conditions
        document = {"Version": "2012-10-17", "Statement": [statement]}
        self._add_resource(function_arn, Policy(logical_id, document, RESOURCE))

    def _add_resource(self, arn: str, policy: Policy) -> None:
        self.resource.setdefault(arn, []).append(policy)


_READERS: dict[str, Callable[[TemplatePolicies, str, Mapping[str, Any], Resolve], None]] = {
    "AWS::IAM::Role": TemplatePolicies._read_role,
    "AWS::IAM::Policy": TemplatePolicies._read_policy,
    "AWS::IAM::ManagedPolicy": TemplatePolicies._read_policy,
    "AWS::S3::BucketPolicy": TemplatePolicies._read_bucket_policy,
    "AWS::SQS::QueuePolicy": TemplatePolicies._read_queue_policy,
    "AWS::SNS::TopicPolicy": TemplatePolicies._read_topic_policy,
    "AWS::KMS::Key": TemplatePolicies._read_key,
    "AWS::SNS::Topic": TemplatePolicies._read_topic,
    "AWS::SQS::Queue": TemplatePolicies._read_queue,
    "AWS::Lambda::Permission": TemplatePolicies._read_lambda_permission,
}
