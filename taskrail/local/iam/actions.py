"""What an AWS API request asks IAM for: the action(s), the resource ARN(s) each addresses, and the condition keys.

Per the Service Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/),
for the operations taskrail's principals use:

* **DynamoDB** (``DynamoDB_20120810.<Op>``): ``dynamodb:<Op>`` on ``table/T``; a ``Query``/``Scan`` with
  ``IndexName`` on ``table/T/index/I``; ``TransactWriteItems`` asks for ``PutItem``/``UpdateItem``/``DeleteItem``/
  ``ConditionCheckItem`` per item, ``TransactGetItems`` for ``GetItem``, ``BatchWriteItem``/``BatchGetItem`` per table
  ("Using IAM policy conditions for fine-grained access control" and the DynamoDB actions table).
* **DynamoDB Streams** (``DynamoDBStreams_20120810.<Op>``): ``dynamodb:<Op>`` on the stream ARN; ``GetRecords``
  names its stream through the shard iterator; ``ListStreams`` on ``*``.
* **SQS** (JSON, ``AmazonSQS.<Op>``): ``sqs:<Op>`` on the queue ARN (from ``QueueUrl`` or ``QueueName``); a batch
  operation asks for its single-message action (``SendMessageBatch`` is ``sqs:SendMessage``).
* **SNS** (query): ``sns:<Action>`` on the topic ARN; ``PublishBatch`` is ``sns:Publish``.
* **EventBridge** (``AWSEvents.PutEvents``): ``events:PutEvents`` on each entry's event bus (``default`` if none).
* **Step Functions** (``AWSStepFunctions.<Op>``): ``StartExecution`` on the ``stateMachine:`` ARN;
  ``DescribeExecution``, ``StopExecution``, ``GetExecutionHistory``, ``RedriveExecution``,
  ``DescribeStateMachineForExecution`` on the ``execution:`` ARN.
  A start through a version or an alias (``stateMachine:M:live``) is authorized against the state machine's own ARN,
  with the qualifier in the condition key ``states:StateMachineQualifier`` ("Authorization for versions and aliases
  in Step Functions workflows", Developer Guide).
* **Lambda** (REST): ``Invoke`` is ``lambda:InvokeFunction`` on the function ARN, with ``:qualifier`` when one is given.
* **S3** (REST): ``GET``/``HEAD`` of a key is ``s3:GetObject``; ``PUT`` ``s3:PutObject`` (a copy also
  ``s3:GetObject`` on the source); ``DELETE`` ``s3:DeleteObject``; listing a bucket is ``s3:ListBucket`` on the
  bucket, with the ``s3:prefix`` condition key when a prefix is given (``HeadObject`` needs ``s3:GetObject``,
  ``ListObjectsV2`` needs ``s3:ListBucket``: "Required permissions for Amazon S3 API operations").
* **KMS** (``TrentService.<Op>``): ``kms:<Op>`` on the key ARN.
* **STS** ``GetCallerIdentity`` needs no permission ("no permissions are required to perform this operation").

A request this module cannot map raises :class:`Unmapped`; the endpoint denies it (a principal's call the local
stack cannot evaluate is a finding, not something to let through).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

__all__ = ["Access", "ApiCall", "HttpRequest", "Unmapped", "describe"]


class Unmapped(ValueError):
    """The local IAM mapping does not know which action/resource this request asks for."""


@dataclass(frozen=True)
class Access:
    action: str
    resource: str


@dataclass(frozen=True)
class ApiCall:
    """One request as IAM sees it: the service's operation, what it asks for, its condition keys."""

    service: str
    operation: str
    accesses: tuple[Access, ...]
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    host: str
    path: str  # the raw (still percent-encoded) path
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    service: str  # the SigV4 scope's service (the signing name: dynamodb also for Streams)
    region: str


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as error:
        raise Unmapped(f"the request body is not JSON: {error}") from None
    return data if isinstance(data, dict) else {}


class _Arns:
    def __init__(self, region: str, account: str) -> None:
        self.region, self.account = region, account

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"

    def table(self, name: str) -> str:
        return name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")

    def queue_from_url(self, url: str) -> str:
        if url.startswith("arn:"):
            return url
        parts = [p for p in urlsplit(url).path.split("/") if p]
        if len(parts) < 2:
            raise Unmapped(f"not a queue URL: {url!r}")
        return f"arn:aws:sqs:{self.region}:{parts[-2]}:{parts[-1]}"

    def function(self, name: str, qualifier: str | None) -> str:
        if name.startswith("arn:"):
            arn = name
        elif ":" in name:  # "123456789012:function:f" or "f:qualifier"
            parts = name.split(":")
            arn = (
                self.arn("lambda", ":".join(parts[1:]))
                if parts[0].isdigit()
                else self.arn("lambda", f"function:{name}")
            )
        else:
            arn = self.arn("lambda", f"function:{name}")
        if qualifier and arn.count(":") == 6:
            arn += f":{qualifier}"
        return arn

    def event_bus(self, name: str | None) -> str:
        name = name or "default"
        return name if name.startswith("arn:") else self.arn("events", f"event-bus/{name}")

    def key(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        return self.arn("kms", key_id if key_id.startswith("alias/") else f"key/{key_id}")


def _dynamodb(op: str, body: dict[str, Any], arns: _Arns) -> list[Access]:
    action = f"dynamodb:{op}"
    if op in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
        return [Access(action, "*")]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [Access(action, arns.table(name)) for name in body.get("RequestItems", {})]
    if op in ("TransactWriteItems", "TransactGetItems"):
        accesses = []
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        for item in body.get("TransactItems", []):
            for kind, request in item.items():
                name = "GetItem" if kind == "Get" else kinds.get(kind)
                if name is None:
                    raise Unmapped(f"unknown transaction item {kind!r}")
                accesses.append(Access(f"dynamodb:{name}", arns.table(request["TableName"])))
        return accesses
    name = body.get("TableName") or body.get("TableArn") or body.get("ResourceArn")
    if not name:
        raise Unmapped(f"dynamodb {op} names no table")
    resource = arns.table(str(name))
    if op in ("Query", "Scan") and body.get("IndexName"):
        resource += f"/index/{body['IndexName']}"
    return [Access(action, resource)]


def _streams(op: str, body: dict[str, Any]) -> list[Access]:
    action = f"dynamodb:{op}"
    if op == "ListStreams":
        return [Access(action, "*")]
    if op == "GetRecords":
        iterator = str(body.get("ShardIterator", ""))
        # A shard iterator names its stream (moto's: "<stream ARN>|1|<id>"; AWS's is opaque, but IAM evaluates
        # GetRecords on the stream it belongs to).
        stream = iterator.split("|", 1)[0]
        if ":table/" not in stream or "/stream/" not in stream:
            raise Unmapped("the shard iterator does not name its stream")
        return [Access(action, stream)]
    stream_arn = body.get("StreamArn")
    if not stream_arn:
        raise Unmapped(f"dynamodb streams {op} names no stream")
    return [Access(action, str(stream_arn))]


#: "Amazon SQS batch actions": "You cannot set permissions explicitly for SendMessageBatch, DeleteMessageBatch, or
#: ChangeMessageVisibilityBatch"; the single-message action's permission covers its batch version.
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(op: str, body: dict[str, Any], arns: _Arns) -> list[Access]:
    action = f"sqs:{_SQS_BATCH.get(op, op)}"
    if op == "ListQueues":
        return [Access(action, "*")]
    if op in ("GetQueueUrl", "CreateQueue"):
        owner = body.get("QueueOwnerAWSAccountId") or arns.account
        return [Access(action, f"arn:aws:sqs:{arns.region}:{owner}:{body.get('QueueName', '')}")]
    url = body.get("QueueUrl")
    if not url:
        raise Unmapped(f"sqs {op} names no queue")
    return [Access(action, arns.queue_from_url(str(url)))]


def _events(op: str, body: dict[str, Any], arns: _Arns) -> list[Access]:
    action = f"events:{op}"
    if op == "PutEvents":
        buses = dict.fromkeys(arns.event_bus(e.get("EventBusName")) for e in body.get("Entries", []))
        return [Access(action, bus) for bus in buses] or [Access(action, arns.event_bus(None))]
    if op in ("PutRule", "PutTargets", "DescribeRule", "DeleteRule", "RemoveTargets", "ListTargetsByRule"):
        bus = body.get("EventBusName") or "default"
        rule = body.get("Name") or body.get("Rule")
        prefix = "" if bus == "default" else f"{bus}/"
        return [Access(action, arns.arn("events", f"rule/{prefix}{rule}"))]
    if op in ("CreateEventBus", "DescribeEventBus", "DeleteEventBus"):
        return [Access(action, arns.event_bus(body.get("Name")))]
    return [Access(action, "*")]


_EXECUTION_OPS = (
    "DescribeExecution",
    "StopExecution",
    "GetExecutionHistory",
    "RedriveExecution",
    "DescribeStateMachineForExecution",
)


_UNQUALIFIED_STATE_MACHINE_PARTS = 7  # arn:partition:states:region:account:stateMachine:name


def _states(op: str, body: dict[str, Any]) -> list[Access]:
    action = f"states:{op}"
    if op in _EXECUTION_OPS:
        return [Access(action, str(body.get("executionArn", "")))]
    if "stateMachineArn" in body:
        parts = str(body["stateMachineArn"]).split(":")
        return [Access(action, ":".join(parts[:_UNQUALIFIED_STATE_MACHINE_PARTS]))]
    return [Access(action, "*")]


def _states_context(body: dict[str, Any]) -> dict[str, str]:
    parts = str(body.get("stateMachineArn", "")).split(":")
    if len(parts) > _UNQUALIFIED_STATE_MACHINE_PARTS:
        return {"states:StateMachineQualifier": ":".join(parts[_UNQUALIFIED_STATE_MACHINE_PARTS:])}
    return {}


def _kms(op: str, body: dict[str, Any], arns: _Arns) -> list[Access]:
    key = body.get("KeyId") or body.get("DestinationKeyId")
    return [Access(f"kms:{op}", arns.key(str(key)) if key else "*")]


_JSON_TARGETS = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
    "AWSStepFunctions": "states",
    "TrentService": "kms",
}


def _json_call(target: str, request: HttpRequest, arns: _Arns) -> ApiCall:
    prefix, _, op = target.partition(".")
    service = _JSON_TARGETS.get(prefix)
    body = _json(request.body)
    if service == "dynamodb":
        accesses = _dynamodb(op, body, arns)
    elif service == "dynamodbstreams":
        accesses = _streams(op, body)
    elif service == "sqs":
        accesses = _sqs(op, body, arns)
    elif service == "events":
        accesses = _events(op, body, arns)
    elif service == "states":
        accesses = _states(op, body)
    elif service == "kms":
        accesses = _kms(op, body, arns)
    else:
        raise Unmapped(f"no IAM mapping for the JSON target {target!r}")
    return ApiCall(service, op, tuple(accesses), _states_context(body) if service == "states" else {})


def _form(request: HttpRequest) -> dict[str, str]:
    pairs = parse_qs(request.query, keep_blank_values=True)
    if request.body and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        pairs.update(parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return {k: v[0] for k, v in pairs.items()}


def _sns(request: HttpRequest, arns: _Arns) -> ApiCall:
    form = _form(request)
    op = form.get("Action", "")
    if not op:
        raise Unmapped("an SNS request without Action")
    if op in ("ListTopics", "ListSubscriptions"):
        resource = "*"
    elif op == "CreateTopic":
        resource = arns.arn("sns", form.get("Name", ""))
    else:
        resource = form.get("TopicArn") or form.get("TargetArn") or form.get("ResourceArn") or ""
        if not resource and form.get("SubscriptionArn"):
            resource = form["SubscriptionArn"].rsplit(":", 1)[0]
        if not resource:
            raise Unmapped(f"sns {op} names no topic")
    # sns:Publish "Grants permission to both publish and publish batch" ("Amazon SNS API permissions")
    action = "sns:Publish" if op == "PublishBatch" else f"sns:{op}"
    return ApiCall("sns", op, (Access(action, resource),))


_LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_LAMBDA_FUNCTION = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/]+)(?P<rest>/[^?]*)?$")


def _lambda(request: HttpRequest, arns: _Arns) -> ApiCall:
    path = unquote(request.path)
    query = {k: v[0] for k, v in parse_qs(request.query).items()}
    invoke = _LAMBDA_INVOKE.match(path)
    if invoke and request.method == "POST":
        resource = arns.function(invoke["name"], query.get("Qualifier"))
        return ApiCall("lambda", "Invoke", (Access("lambda:InvokeFunction", resource),))
    function = _LAMBDA_FUNCTION.match(path)
    if function and request.method == "GET" and not function["rest"]:
        return ApiCall("lambda", "GetFunction", (Access("lambda:GetFunction", arns.function(function["name"], None)),))
    if function and request.method == "GET" and function["rest"] == "/configuration":
        resource = arns.function(function["name"], None)
        return ApiCall("lambda", "GetFunctionConfiguration", (Access("lambda:GetFunctionConfiguration", resource),))
    raise Unmapped(f"no IAM mapping for the Lambda request {request.method} {path}")


def _s3_location(request: HttpRequest) -> tuple[str, str]:
    host = request.host.split(":", 1)[0].lower()
    path = unquote(request.path)
    if host.endswith(".localhost") or ".s3." in host or host.endswith(".s3.amazonaws.com"):
        bucket = host.split(".", 1)[0]
        return bucket, path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _s3_deleted_keys(body: bytes) -> list[str]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise Unmapped(f"a DeleteObjects body that is not XML: {error}") from None
    return [element.text or "" for element in root.iter() if element.tag.endswith("Key")]


def _s3_object(request: HttpRequest, object_arn: str, query: Mapping[str, list[str]]) -> ApiCall:
    method = request.method.upper()
    if "tagging" in query and method in ("GET", "PUT", "DELETE"):
        op = {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"}[method]
        return ApiCall("s3", op, (Access(f"s3:{op}", object_arn),))
    if method in ("GET", "HEAD"):
        op = "GetObject" if method == "GET" else "HeadObject"
        action = "s3:GetObjectVersion" if "versionId" in query else "s3:GetObject"
        return ApiCall("s3", op, (Access(action, object_arn),))
    source = request.headers.get("x-amz-copy-source")
    if source and method == "PUT":
        source_path = unquote(source.split("?", 1)[0]).lstrip("/")
        return ApiCall(
            "s3", "CopyObject",
            (Access("s3:GetObject", f"arn:aws:s3:::{source_path}"), Access("s3:PutObject", object_arn)),
        )  # fmt: skip
    if method in ("PUT", "POST"):
        return ApiCall("s3", "PutObject", (Access("s3:PutObject", object_arn),))
    if method == "DELETE":
        op = "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
        return ApiCall("s3", op, (Access(f"s3:{op}", object_arn),))
    raise Unmapped(f"no IAM mapping for the S3 request {method} on an object")


_S3_BUCKET_READS = (
    ("location", "GetBucketLocation"),
    ("versions", "ListBucketVersions"),
    ("uploads", "ListBucketMultipartUploads"),
    ("policy", "GetBucketPolicy"),
)
_S3_LIST_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))


def _s3_bucket(request: HttpRequest, bucket_arn: str, query: Mapping[str, list[str]]) -> ApiCall:
    method = request.method.upper()
    if method == "POST" and "delete" in query:
        keys = _s3_deleted_keys(request.body)
        return ApiCall("s3", "DeleteObjects", tuple(Access("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys))
    if method not in ("GET", "HEAD"):
        raise Unmapped(f"no IAM mapping for the S3 bucket request {method} ?{request.query}")
    for sub, action in _S3_BUCKET_READS:
        if sub in query:
            return ApiCall("s3", action, (Access(f"s3:{action}", bucket_arn),))
    if query.keys() - {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
                       "encoding-type", "fetch-owner", "marker"}:  # fmt: skip
        raise Unmapped(f"no IAM mapping for the S3 bucket configuration request {method} ?{request.query}")
    context = {key: query[name][0] for name, key in _S3_LIST_KEYS if name in query}
    op = "HeadBucket" if method == "HEAD" else ("ListObjectsV2" if "list-type" in query else "ListObjects")
    return ApiCall("s3", op, (Access("s3:ListBucket", bucket_arn),), context)


def _s3(request: HttpRequest) -> ApiCall:
    bucket, key = _s3_location(request)
    query = parse_qs(request.query, keep_blank_values=True)
    if not bucket:
        if request.method.upper() == "GET":
            return ApiCall("s3", "ListBuckets", (Access("s3:ListAllMyBuckets", "*"),))
        raise Unmapped(f"no IAM mapping for the S3 request {request.method} /")
    if key:
        return _s3_object(request, f"arn:aws:s3:::{bucket}/{key}", query)
    return _s3_bucket(request, f"arn:aws:s3:::{bucket}", query)


def describe(request: HttpRequest, account: str) -> ApiCall:
    """The IAM view of ``request`` (raises :class:`Unmapped` for a request outside the mapping)."""
    arns = _Arns(request.region, account)
    target = request.headers.get("x-amz-target")
    if target:
        return _json_call(target, request, arns)
    if request.service == "s3":
        return _s3(request)
    if request.service == "lambda":
        return _lambda(request, arns)
    if request.service == "sns":
        return _sns(request, arns)
    if request.service == "sts" and _form(request).get("Action") == "GetCallerIdentity":
        return ApiCall("sts", "GetCallerIdentity", ())
    raise Unmapped(f"no IAM mapping for {request.service} {request.method} {request.path}")
