"""DynamoDB parity: the writes (and their reads' key rules) taskrail or a user's next template could make, each a
request and the answer AWS gives it (status, error code, the fields that matter), with its evidence.

Evidence (AWS documentation pages, found with the search tool, corpus ``docs``; and suites run against DynamoDB):
- [PUTITEM] PutItem, DynamoDB API Reference (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
  API_PutItem.html), ``Item``: "If you specify any attributes that are part of an index key, then the data types for
  those attributes must match those of the schema in the table's attribute definition. Empty String and Binary
  attribute values are allowed. Attribute values of type String and Binary must have a length greater than zero if
  the attribute is used as a key attribute for a table or index." ``ReturnValuesOnConditionCheckFailure``: "the
  valid values are: NONE and ALL_OLD". Errors: ConditionalCheckFailedException; ValidationException (400).
- [PUTREQUEST] PutRequest, API Reference (.../API_PutRequest.html): "If any attributes are present in the item that
  are part of an index key schema for the table, their types must match the index key schema." (BatchWriteItem's
  and, by the same Put shape, TransactWriteItems' Put.)
- [BATCHWRITE] BatchWriteItem, API Reference (.../API_BatchWriteItem.html): "up to 25 item put or delete
  operations"; DynamoDB rejects the entire batch write operation if "Primary key attributes specified on an item in
  the request do not match those in the corresponding table's primary key schema", "Your request contains at least
  two items with identical hash and range keys", "There are more than 25 requests in the batch", "Any individual
  item in a batch exceeds 400 KB".
- [BATCHGET] BatchGetItem, API Reference (.../API_BatchGetItem.html): "as many as 100 items. [...] If you request
  more than 100 items, BatchGetItem returns a ValidationException with the message "Too many items requested for the
  BatchGetItem call."".
- [TRANSACT] TransactWriteItems, API Reference (.../API_TransactWriteItems.html): "up to 100 action requests";
  TransactItems "Minimum number of 1 item. Maximum number of 100 items"; "You can't target the same item with
  multiple operations within the same transaction"; TransactionCanceledException with CancellationReasons, whose
  Item is returned "if ReturnValuesOnConditionCheckFailure is set to ALL_OLD".
- [QUOTAS] "Quotas in Amazon DynamoDB", Developer Guide: "The maximum item size in DynamoDB is 400 KB".
- [RESERVED] "Reserved words in DynamoDB" and "Expression attribute names", Developer Guide
  (.../developerguide/ReservedWords.html, Expressions.ExpressionAttributeNames.html): a reserved word (``status``)
  cannot be used as an attribute name in an expression; use an expression attribute name.
- [TYPES] "Supported data types and naming rules", Developer Guide (.../HowItWorks.NamingRulesDataTypes.html): "Each
  value within a set must be unique. [...] DynamoDB does not support empty sets".
- [PLACEHOLDERS] DynamoDB refuses an ExpressionAttributeValues/Names entry no expression uses, and either one given
  without any expression: ScyllaDB's Alternator suite, written and run against DynamoDB (``--aws``),
  test/alternator/test_update_expression.py ``test_update_expression_spurious_value`` ("DynamoDB produces an error
  like: "Value provided in ExpressionAttributeValues unused in expressions: keys: {:val1}"") and
  ``test_update_expression_set_copy`` (an unused ``#three``); dynalite's validation suite (run against DynamoDB)
  ``putItem``: "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null".
- [UNDEFINED-NAME] An UpdateExpression naming an ``#name`` that ExpressionAttributeNames does not define:
  ValidationException "Invalid UpdateExpression: An expression attribute name used in the document path is not
  defined; attribute name: #c" (dynalite's DynamoDB-verified updateItem validation, "should return
  ValidationException for undefined attribute names in UpdateExpression"; the Developer Guide's "Expression
  attribute names"). moto looked a root ``#name`` up unguarded and answered a 500 (services/dynamodb.py
  UNDEFINED_NAMES).
- [KEYCONDITION] A Query whose key condition value has another type than the key's declared type: DynamoDB answers
  ValidationException "One or more parameter values were invalid: Condition parameter type does not match schema
  type" (dynalite's DynamoDB-verified query validation; the error users report from DynamoDB for a typed GSI key).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.parity.dynamodb.conftest import TABLE
from tests.parity.endpoint import call

VALIDATION = "ValidationException"


def key() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def item(**extra: Any) -> dict[str, Any]:
    return {"taskId": {"S": key()}, "userId": {"S": "alice"}, "createdAt": {"N": "1700000000"}, **extra}


def put(it: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": it}}


@dataclass
class Case:
    name: str
    action: str  # boto3 method name
    request: dict[str, Any]
    status: int
    code: str | None = None
    message: str = ""  # a fragment AWS's message holds
    evidence: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # top-level response fields and their expected value


def _transact_put(it: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": it, **extra}}


CASES = [
    # ---- index key types: the bug class that once made every submission fail on AWS ----
    Case(
        "PutItem GSI sort key createdAt as S (index declares N)",
        "put_item",
        {"TableName": TABLE, "Item": item(createdAt={"S": "1700000000"})},
        400,
        VALIDATION,
        "Type mismatch for Index Key createdAt Expected: N Actual: S IndexName: by",
        "PUTITEM",
    ),
    Case(
        "PutItem GSI partition key userId as N",
        "put_item",
        {"TableName": TABLE, "Item": item(userId={"N": "7"})},
        400,
        VALIDATION,
        "Type mismatch for Index Key userId Expected: S Actual: N IndexName: byUser",
        "PUTITEM",
    ),
    Case(
        "BatchWriteItem PutRequest GSI key of the wrong type",
        "batch_write_item",
        {"RequestItems": {TABLE: [put(item(createdAt={"S": "x"}))]}},
        400,
        VALIDATION,
        "Type mismatch for Index Key createdAt Expected: N Actual: S",
        "PUTREQUEST",
    ),
    Case(
        "TransactWriteItems Put GSI key of the wrong type",
        "transact_write_items",
        {"TransactItems": [_transact_put(item(status={"N": "1"}))]},
        400,
        VALIDATION,
        "Type mismatch for Index Key status Expected: S Actual: N IndexName: byStatus",
        "PUTREQUEST",
    ),
    Case(
        "UpdateItem SET GSI key of the wrong type",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET createdAt = :c",
            "ExpressionAttributeValues": {":c": {"S": "soon"}},
        },
        400,
        VALIDATION,
        "createdAt",
        "PUTITEM",
    ),
    Case(
        "TransactWriteItems Update GSI key of the wrong type",
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"taskId": {"S": key()}},
                        "UpdateExpression": "SET createdAt = :c",
                        "ExpressionAttributeValues": {":c": {"S": "soon"}},
                    }
                }
            ]
        },
        400,
        VALIDATION,
        "createdAt",
        "PUTITEM",
    ),
    Case(
        "PutItem table key of the wrong type",
        "put_item",
        {"TableName": TABLE, "Item": {"taskId": {"N": "1"}}},
        400,
        VALIDATION,
        "Type mismatch for key taskId",
        "PUTITEM",
    ),
    Case(
        "PutItem without the GSI keys is accepted (a sparse index)",
        "put_item",
        {"TableName": TABLE, "Item": {"taskId": {"S": key()}}},
        200,
        evidence="PUTITEM",
    ),
    # ---- empty strings ----
    Case(
        "PutItem empty table key",
        "put_item",
        {"TableName": TABLE, "Item": {"taskId": {"S": ""}}},
        400,
        VALIDATION,
        "taskId",
        "PUTITEM",
    ),
    Case(
        "PutItem empty GSI key",
        "put_item",
        {"TableName": TABLE, "Item": item(userId={"S": ""})},
        400,
        VALIDATION,
        "secondary index key",
        "PUTITEM",
    ),
    Case(
        "BatchWriteItem empty GSI key",
        "batch_write_item",
        {"RequestItems": {TABLE: [put(item(userId={"S": ""}))]}},
        400,
        VALIDATION,
        "secondary index key",
        "PUTITEM",
    ),
    Case(
        "TransactWriteItems Put empty GSI key",
        "transact_write_items",
        {"TransactItems": [_transact_put(item(status={"S": ""}))]},
        400,
        VALIDATION,
        "secondary index key",
        "PUTITEM",
    ),
    Case(
        "UpdateItem SET GSI key to an empty string",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET userId = :u",
            "ExpressionAttributeValues": {":u": {"S": ""}},
        },
        400,
        VALIDATION,
        "secondary index key",
        "PUTITEM",
    ),
    Case(
        "PutItem empty string in a non-key attribute is accepted",
        "put_item",
        {"TableName": TABLE, "Item": item(note={"S": ""})},
        200,
        evidence="PUTITEM",
    ),
    # ---- item size ----
    Case(
        "PutItem item over 400 KB",
        "put_item",
        {"TableName": TABLE, "Item": item(bigdata={"S": "x" * (400 * 1024)})},
        400,
        VALIDATION,
        "Item size has exceeded the maximum allowed size",
        "QUOTAS",
    ),
    Case(
        "BatchWriteItem item over 400 KB",
        "batch_write_item",
        {"RequestItems": {TABLE: [put(item(bigdata={"S": "x" * (400 * 1024)}))]}},
        400,
        VALIDATION,
        "Item size has exceeded the maximum allowed size",
        "BATCHWRITE",
    ),
    Case(
        "UpdateItem growing an item over 400 KB",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET bigdata = :b",
            "ExpressionAttributeValues": {":b": {"S": "x" * (400 * 1024)}},
        },
        400,
        VALIDATION,
        "Item size to update has exceeded the maximum allowed size",
        "QUOTAS",
    ),
    # ---- expression rules ----
    Case(
        "PutItem unused ExpressionAttributeValues",
        "put_item",
        {
            "TableName": TABLE,
            "Item": item(),
            "ConditionExpression": "attribute_not_exists(taskId)",
            "ExpressionAttributeValues": {":unused": {"S": "x"}},
        },
        400,
        VALIDATION,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
        "PLACEHOLDERS",
    ),
    Case(
        "PutItem unused ExpressionAttributeNames",
        "put_item",
        {
            "TableName": TABLE,
            "Item": item(),
            "ConditionExpression": "attribute_not_exists(taskId)",
            "ExpressionAttributeNames": {"#s": "status"},
        },
        400,
        VALIDATION,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#s}",
        "PLACEHOLDERS",
    ),
    Case(
        "PutItem ExpressionAttributeValues without any expression",
        "put_item",
        {"TableName": TABLE, "Item": item(), "ExpressionAttributeValues": {":v": {"S": "x"}}},
        400,
        VALIDATION,
        "ExpressionAttributeValues can only be specified when using expressions",
        "PLACEHOLDERS",
    ),
    Case(
        "UpdateItem unused ExpressionAttributeValues",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET note = :n",
            "ExpressionAttributeValues": {":n": {"S": "n"}, ":unused": {"S": "x"}},
        },
        400,
        VALIDATION,
        "unused in expressions: keys: {:unused}",
        "PLACEHOLDERS",
    ),
    Case(
        "DeleteItem unused ExpressionAttributeValues (refused before the condition is evaluated)",
        "delete_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "ConditionExpression": "attribute_exists(taskId)",
            "ExpressionAttributeValues": {":unused": {"S": "x"}},
        },
        400,
        VALIDATION,
        "unused in expressions: keys: {:unused}",
        "PLACEHOLDERS",
    ),
    Case(
        "Query unused ExpressionAttributeValues",
        "query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "taskId = :k",
            "ExpressionAttributeValues": {":k": {"S": "x"}, ":unused": {"S": "x"}},
        },
        400,
        VALIDATION,
        "unused in expressions: keys: {:unused}",
        "PLACEHOLDERS",
    ),
    Case(
        "TransactWriteItems Put unused ExpressionAttributeValues",
        "transact_write_items",
        {
            "TransactItems": [
                _transact_put(
                    item(),
                    ConditionExpression="attribute_not_exists(taskId)",
                    ExpressionAttributeValues={":unused": {"S": "x"}},
                )
            ]
        },
        400,
        VALIDATION,
        "unused in expressions: keys: {:unused}",
        "PLACEHOLDERS",
    ),
    Case(
        "UpdateItem reserved word status as a bare attribute name",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET status = :s",
            "ExpressionAttributeValues": {":s": {"S": "QUEUED"}},
        },
        400,
        VALIDATION,
        "reserved keyword: status",
        "RESERVED",
    ),
    Case(
        "PutItem reserved word in a ConditionExpression",
        "put_item",
        {"TableName": TABLE, "Item": item(), "ConditionExpression": "attribute_not_exists(status)"},
        400,
        VALIDATION,
        "reserved keyword: status",
        "RESERVED",
    ),
    Case(
        "UpdateItem reserved word through #name is accepted",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET #s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "QUEUED"}},
        },
        200,
        evidence="RESERVED",
    ),
    # ---- sets ----
    Case(
        "PutItem string set with duplicates",
        "put_item",
        {"TableName": TABLE, "Item": item(tags={"SS": ["a", "a"]})},
        400,
        VALIDATION,
        "Input collection [a, a] contains duplicates",
        "TYPES",
    ),
    Case(
        "PutItem number set with duplicates (1 and 1.0)",
        "put_item",
        {"TableName": TABLE, "Item": item(sizes={"NS": ["1", "1.0"]})},
        400,
        VALIDATION,
        "contains duplicates",
        "TYPES",
    ),
    Case(
        "UpdateItem value that is a set with duplicates",
        "update_item",
        {
            "TableName": TABLE,
            "Key": {"taskId": {"S": key()}},
            "UpdateExpression": "SET tags = :t",
            "ExpressionAttributeValues": {":t": {"SS": ["a", "a"]}},
        },
        400,
        VALIDATION,
        "contains duplicates",
        "TYPES",
    ),
    Case(
        "PutItem empty set",
        "put_item",
        {"TableName": TABLE, "Item": item(tags={"SS": []})},
        400,
        VALIDATION,
        "may not be empty",
        "TYPES",
    ),
    # ---- batch and transaction limits ----
    Case(
        "BatchWriteItem 25 requests is accepted",
        "batch_write_item",
        {"RequestItems": {TABLE: [put(item()) for _ in range(25)]}},
        200,
        evidence="BATCHWRITE",
        fields={"UnprocessedItems": {}},
    ),
    Case(
        "BatchWriteItem 26 requests",
        "batch_write_item",
        {"RequestItems": {TABLE: [put(item()) for _ in range(26)]}},
        400,
        VALIDATION,
        "Too many items requested for the BatchWriteItem call",
        "BATCHWRITE",
    ),
    Case(
        "BatchWriteItem two requests for one key",
        "batch_write_item",
        {"RequestItems": {TABLE: [put({"taskId": {"S": "same"}}), put({"taskId": {"S": "same"}})]}},
        400,
        VALIDATION,
        "Provided list of item keys contains duplicates",
        "BATCHWRITE",
    ),
    Case(
        "BatchWriteItem key attribute missing",
        "batch_write_item",
        {"RequestItems": {TABLE: [put({"userId": {"S": "alice"}})]}},
        400,
        VALIDATION,
        "",
        "BATCHWRITE",
    ),
    Case(
        "BatchGetItem 101 keys",
        "batch_get_item",
        {"RequestItems": {TABLE: {"Keys": [{"taskId": {"S": f"k{i}"}} for i in range(101)]}}},
        400,
        VALIDATION,
        "Too many items requested for the BatchGetItem call",
        "BATCHGET",
    ),
    Case(
        "TransactWriteItems 101 actions",
        "transact_write_items",
        {"TransactItems": [_transact_put(item()) for _ in range(101)]},
        400,
        VALIDATION,
        "",
        "TRANSACT",
    ),
    Case(
        "TransactWriteItems no action",
        "transact_write_items",
        {"TransactItems": []},
        400,
        VALIDATION,
        "",
        "TRANSACT",
    ),
    Case(
        "TransactWriteItems two actions on one item",
        "transact_write_items",
        {
            "TransactItems": [
                _transact_put({"taskId": {"S": "twice"}}),
                {"Delete": {"TableName": TABLE, "Key": {"taskId": {"S": "twice"}}}},
            ]
        },
        400,
        VALIDATION,
        "multiple operations on one item",
        "TRANSACT",
    ),
    Case(
        "Query table key compared with a number (key declares S)",
        "query",
        {"TableName": TABLE, "KeyConditionExpression": "taskId = :k", "ExpressionAttributeValues": {":k": {"N": "1"}}},
        400,
        VALIDATION,
        "Condition parameter type does not match schema type",
        "KEYCONDITION",
    ),
    Case(
        "Query GSI sort key createdAt compared with a string (index declares N)",
        "query",
        {
            "TableName": TABLE,
            "IndexName": "byStatus",
            "KeyConditionExpression": "#s = :s AND createdAt < :before",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "QUEUED"}, ":before": {"S": "1700000000"}},
        },
        400,
        VALIDATION,
        "Condition parameter type does not match schema type",
        "KEYCONDITION",
    ),
    Case(
        "Query GSI with typed values is accepted (the reconciler's query)",
        "query",
        {
            "TableName": TABLE,
            "IndexName": "byStatus",
            "KeyConditionExpression": "#s = :s AND createdAt < :before",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "QUEUED"}, ":before": {"N": "1700000000"}},
        },
        200,
        evidence="KEYCONDITION",
    ),
    *(
        Case(
            f"UpdateItem {expression} with #c undefined",
            "update_item",
            {
                "TableName": TABLE,
                "Key": {"taskId": {"S": key()}},
                "UpdateExpression": expression,
                **({"ExpressionAttributeValues": {":v": {"S": "x"}}} if ":v" in expression else {}),
                **({"ExpressionAttributeNames": {"#a": "a"}} if "#a" in expression else {}),
            },
            400,
            VALIDATION,
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; "
            "attribute name: #c",
            "UNDEFINED-NAME",
        )
        for expression in ("SET #c = :v", "REMOVE #c", "SET #a = :v, #c = :v", "SET #c.d = :v")
    ),
    Case(
        "PutItem ReturnValuesOnConditionCheckFailure outside NONE | ALL_OLD",
        "put_item",
        {
            "TableName": TABLE,
            "Item": item(),
            "ConditionExpression": "attribute_not_exists(taskId)",
            "ReturnValuesOnConditionCheckFailure": "ALL_NEW",
        },
        400,
        VALIDATION,
        "ALL_OLD, NONE",
        "PUTITEM",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_dynamodb_answers_as_aws(dynamodb: Any, case: Case) -> None:
    answer = call(getattr(dynamodb, case.action), **case.request)
    print(answer.line(f"dynamodb {case.name} [{case.evidence}]"))
    assert (answer.status, answer.code) == (case.status, case.code), answer.message
    assert case.message in answer.message
    for name, value in case.fields.items():
        assert answer.body.get(name) == value, (name, answer.body.get(name))


def test_a_refused_write_writes_nothing(dynamodb: Any) -> None:
    """[BATCHWRITE] DynamoDB "rejects the entire batch write operation": the valid item of a refused batch is not
    stored either (one of 2 requests has a GSI key of the wrong type)."""
    good, bad = item(), item(createdAt={"S": "x"})
    answer = call(dynamodb.batch_write_item, RequestItems={TABLE: [put(good), put(bad)]})
    print(answer.line("dynamodb BatchWriteItem with one bad request stores nothing"))
    assert (answer.status, answer.code) == (400, VALIDATION)
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"taskId": good["taskId"]}, ConsistentRead=True)


def _existing() -> dict[str, Any]:
    return item(note={"S": "old"})


def test_conditional_check_failed_returns_the_item_only_when_asked(dynamodb: Any) -> None:
    """[PUTITEM] ConditionalCheckFailedException (400); with ReturnValuesOnConditionCheckFailure ALL_OLD its
    ``Item`` is the stored item, without it there is no ``Item``."""
    stored = _existing()
    dynamodb.put_item(TableName=TABLE, Item=stored)
    request = {
        "TableName": TABLE,
        "Item": {"taskId": stored["taskId"]},
        "ConditionExpression": "attribute_not_exists(taskId)",
    }
    plain = call(dynamodb.put_item, **request)
    asked = call(dynamodb.put_item, **request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    update = call(
        dynamodb.update_item,
        TableName=TABLE,
        Key={"taskId": stored["taskId"]},
        UpdateExpression="SET note = :n",
        ConditionExpression="note = :o",
        ExpressionAttributeValues={":n": {"S": "new"}, ":o": {"S": "other"}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    for label, answer in (("PutItem", plain), ("PutItem ALL_OLD", asked), ("UpdateItem ALL_OLD", update)):
        print(answer.line(f"dynamodb ConditionalCheckFailed {label} Item={answer.body.get('Item') is not None}"))
        assert (answer.status, answer.code) == (400, "ConditionalCheckFailedException")
    assert "Item" not in plain.body
    assert asked.body["Item"] == stored
    assert update.body["Item"] == stored


def test_transaction_cancelled_names_each_reason(dynamodb: Any) -> None:
    """[TRANSACT] TransactionCanceledException; CancellationReasons in request order, ConditionalCheckFailed with
    the item (ALL_OLD) for the failed condition and None for the other action."""
    stored = _existing()
    dynamodb.put_item(TableName=TABLE, Item=stored)
    answer = call(
        dynamodb.transact_write_items,
        TransactItems=[
            _transact_put(
                {"taskId": stored["taskId"]},
                ConditionExpression="attribute_not_exists(taskId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            _transact_put(item()),
        ],
    )
    print(answer.line("dynamodb TransactWriteItems condition failed"))
    assert (answer.status, answer.code) == (400, "TransactionCanceledException")
    reasons = answer.body["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None"]
    assert reasons[0]["Item"] == stored
