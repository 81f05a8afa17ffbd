"""An UpdateExpression parsed once (taskrail/local/services/dynamodb.py, UPDATE_EXPRESSION_CACHE): a speed patch, so
every answer must be moto's own. A corpus of UpdateItems (new and stored items; SET, REMOVE, ADD, DELETE, functions,
arithmetic, nested paths and list indexes; and the errors DynamoDB answers: too many clauses, overlapping paths, a
key attribute, undefined names and values, a reserved word, an index key's type, an empty key string, a missing
attribute, a wrong operand type, a failed condition, syntax errors) runs twice over, once with moto's code and once
with the cache; the answers, the items and the stream records must be the same.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.tokens import ExpressionTokenizer

from taskrail.local.services import dynamodb, registry
from taskrail.local.services.patching import original

ACCOUNT, REGION = "123456789012", "us-east-1"

STORED: dict[str, Any] = {
    "n": {"N": "5"},
    "a": {"S": "old"},
    "l": {"L": [{"S": "x"}, {"S": "y"}, {"S": "z"}]},
    "m": {"M": {"x": {"S": "mx"}, "nest": {"M": {"deep": {"N": "1"}}}}},
    "s": {"SS": ["p", "q"]},
    "txt": {"S": "not a list"},
}
VALUES: dict[str, Any] = {
    ":v": {"S": "new"},
    ":w": {"S": "other"},
    ":one": {"N": "1"},
    ":list": {"L": [{"S": "appended"}]},
    ":set": {"SS": ["q", "r"]},
    ":num": {"N": "7"},
    ":empty": {"S": ""},
}

# (UpdateExpression, the placeholders it names: "#x" -> attribute, extra request fields)
CORPUS: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("SET a = :v", {}, {}),
    ("SET a = if_not_exists(a, :v), #t = if_not_exists(#t, :w)", {"#t": "type"}, {}),
    ("SET n = n + :one", {}, {}),
    ("SET n = :one - n", {}, {}),
    ("SET l = list_append(l, :list)", {}, {}),
    ("SET l = list_append(:list, l)", {}, {}),
    ("SET txt = list_append(txt, :list)", {}, {}),
    ("SET m.x = :v, m.nest.deep = :one", {}, {}),
    ("SET m.nothere.z = :v", {}, {}),
    ("SET l[0] = :v", {}, {}),
    ("SET l[7] = :v", {}, {}),
    ("REMOVE l[1], l[0]", {}, {}),
    ("REMOVE a, txt", {}, {}),
    ("ADD s :set, n :one", {}, {}),
    ("DELETE s :set", {}, {}),
    ("SET a = :v REMOVE txt ADD n :one DELETE s :set", {}, {}),
    ("SET #m.#x = :v", {"#m": "m", "#x": "x"}, {}),
    ("SET a = :v SET n = :one", {}, {}),
    ("REMOVE a REMOVE n", {}, {}),
    ("SET a = :v, a = :w", {}, {}),
    ("SET #a = :v, #b = :w", {"#a": "a", "#b": "a"}, {}),
    ("SET m = :v, m.x = :w", {}, {}),
    ("SET pk = :v", {}, {}),
    ("SET #k = :v", {"#k": "pk"}, {}),
    ("SET #n = :v, m.#nope = :w", {"#n": "a"}, {}),
    ("SET #n = :v, #nope = :w", {"#n": "a"}, {}),  # moto: a KeyError (a 500), with or without the cache
    ("SET a = :undefined", {}, {}),
    ("SET size = :v", {}, {}),
    ("SET gk = :num", {}, {}),
    ("SET gk = :empty", {}, {}),
    ("SET gk = :v", {}, {}),
    ("SET absent = absent + :one", {}, {}),
    ("SET a = a + :one", {}, {}),
    ("SET a = :v", {}, {"ConditionExpression": "attribute_exists(nothing)"}),
    (
        "SET a = :v",
        {},
        {"ConditionExpression": "attribute_exists(n)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
    ),
    ("SET a = ", {}, {}),
    ("SET = :v", {}, {}),
    ("BOGUS a = :v", {}, {}),
    ("SET a = :v,", {}, {}),
    (
        "SET userId = if_not_exists(userId, :v), #t = if_not_exists(#t, :w), progress = if_not_exists(progress, :one),"
        " createdAt = if_not_exists(createdAt, :num)",
        {"#t": "type"},
        {"ConditionExpression": "attribute_not_exists(pk) OR (userId = :v AND #t = :w)", "ReturnValues": "ALL_OLD"},
    ),
]


def _placeholders(expression: str, extra: dict[str, Any]) -> set[str]:
    """The values of VALUES the request's expressions name (sending one more is a ValidationException)."""
    return set(VALUES) & set(re.findall(r":[A-Za-z0-9_]+", f"{expression} {extra.get('ConditionExpression', '')}"))


def _run_corpus(client: Any) -> list[Any]:
    """Each case on a new item and on a stored one, twice over (the second round meets a warm cache)."""
    answers: list[Any] = []
    for round_ in range(2):
        for index, (expression, names, extra) in enumerate(CORPUS):
            for stored in (False, True):
                key = {"pk": {"S": f"{index}-{int(stored)}-{round_}"}}
                if stored:
                    client.put_item(TableName="T", Item={**key, **STORED})
                request: dict[str, Any] = {
                    "TableName": "T",
                    "Key": key,
                    "UpdateExpression": expression,
                    "ReturnValues": "ALL_NEW",
                    **extra,
                }
                used = {name: VALUES[name] for name in _placeholders(expression, extra)}
                if used:
                    request["ExpressionAttributeValues"] = used
                if names:
                    request["ExpressionAttributeNames"] = names
                try:
                    answer = client.update_item(**request)
                    answer.pop("ResponseMetadata", None)
                    answers.append(("ok", expression, stored, answer))
                except ClientError as error:
                    answers.append(("error", expression, stored, error.response["Error"], error.response.get("Item")))
                except Exception as error:  # moto's own failure (a 500 in server mode): the same one either way
                    answers.append(("raised", expression, stored, repr(error)))
    items = client.scan(TableName="T")["Items"]
    answers.append(sorted(items, key=lambda item: item["pk"]["S"]))
    shard = dynamodb_backends[ACCOUNT][REGION].get_table("T").stream_shard
    answers.append([(r.record["eventName"], r.record["dynamodb"].get("NewImage")) for r in shard.items])
    return answers


@contextmanager
def _table(*, cached: bool) -> Iterator[Any]:
    with mock_aws():
        registry.install_aws_semantics()
        if not cached:
            dynamodb.uninstall_update_expression_cache()
        try:
            client = boto3.client("dynamodb", region_name=REGION)
            client.create_table(
                TableName="T",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "gk", "AttributeType": "S"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "by-gk",
                        "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            yield client
        finally:
            registry.uninstall_aws_semantics()


@pytest.fixture(scope="module")
def moto_answers() -> list[Any]:
    with _table(cached=False) as client:
        assert not dynamodb._parsed_updates
        return _run_corpus(client)


def test_the_corpus_meets_every_kind_of_answer(moto_answers: list[Any]) -> None:
    """The corpus is worth comparing: it holds successes and each error DynamoDB answers for an update."""
    kinds = {answer[0] for answer in moto_answers[:-2]}
    messages = " ".join(str(answer[3].get("Message")) for answer in moto_answers[:-2] if answer[0] == "error")
    assert {"ok", "error"} <= kinds
    for fragment in (
        "Cannot update attribute pk. This attribute is part of the key",
        "Two document paths overlap",
        "The document path provided in the update expression is invalid for update",
        "An expression attribute name used in the document path is not defined",
        "An expression attribute value used in expression is not defined",
        "Attribute name is a reserved keyword",
        "The provided expression refers to an attribute that does not exist in the item",
        "Incorrect operand type for operator or function",
        "The conditional request failed",
        "Invalid UpdateExpression: Syntax error",
        'The "SET" section can only be used once in an update expression',
        "Type mismatch",
        "attempted to update a secondary index key to a value that is not supported",
    ):
        assert fragment in messages, fragment


def test_cached_update_expressions_answer_as_moto_does(moto_answers: list[Any]) -> None:
    with _table(cached=True) as client:
        cached = _run_corpus(client)
        assert dynamodb._parsed_updates, "the cache was not used"
    assert len(cached) == len(moto_answers)
    for ours, theirs in zip(cached, moto_answers, strict=True):
        assert ours == theirs


def test_each_expression_is_parsed_once_and_its_cached_tree_never_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    make = original(UpdateExpressionParser, "make").__func__
    tokenize = ExpressionTokenizer.make_list.__func__

    def counting(cls: Any, expression: str) -> Any:  # called once by each parse of moto's
        parsed.append(expression)
        return tokenize(cls, expression)

    with _table(cached=True) as client:
        monkeypatch.setattr(ExpressionTokenizer, "make_list", classmethod(counting))
        _run_corpus(client)
        trees = dict(dynamodb._parsed_updates)
        # Then each valid expression was parsed once for four UpdateItems (a new and a stored item, two rounds)
        valid = [expression for expression in trees]
        assert valid and all(parsed.count(expression) == 1 for expression in valid), parsed
        # and a cached tree is still what the parser makes of it (moto's processors changed only copies)
        for expression, tree in trees.items():
            assert _shape(tree) == _shape(make(UpdateExpressionParser, expression)), expression


def _shape(node: Any) -> Any:
    """A node's class, attributes and children, recursively, and whether each child's parent is its container."""
    if not isinstance(node, Node):
        return node
    attributes = {name: value for name, value in vars(node).items() if name not in ("children", "parent")}
    children = [(_shape(child), getattr(child, "parent", node) is node) for child in node.children or ()]
    return (type(node), attributes, children, node.children is None)


@pytest.mark.parametrize("expression", [expression for expression, _names, _extra in CORPUS[:17]])
def test_a_cached_tree_is_copied_as_deepcopy_copies_it(expression: str) -> None:
    tree = original(UpdateExpressionParser, "make").__func__(UpdateExpressionParser, expression)
    assert dynamodb._well_formed(tree)
    copied = dynamodb._clone(tree)
    assert _shape(copied) == _shape(copy.deepcopy(tree)) == _shape(tree)
    assert copied is not tree and copied.parent is None


def test_a_tree_that_is_not_a_plain_tree_is_deep_copied() -> None:
    tree = original(UpdateExpressionParser, "make").__func__(UpdateExpressionParser, "SET a = :v, b = :w")
    shared = tree.children[0]
    tree.children.append(shared)  # one node twice: deepcopy keeps it shared, a plain copy would not
    assert not dynamodb._well_formed(tree)


def test_the_patch_fails_loudly_if_moto_stops_copying_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    dynamodb.uninstall_update_expression_cache()
    try:

        def init_without_copy(self: Any, expression: Any, names: Any, values: Any, item: Any, table: Any) -> None:
            self.node_to_validate = expression

        monkeypatch.setattr(validators.Validator, "__init__", init_without_copy)
        problems = dynamodb.UPDATE_EXPRESSION_CACHE.problems()
    finally:
        monkeypatch.undo()
    assert any("Validator.__init__" in problem and "deepcopy(expression)" in problem for problem in problems), problems
    assert dynamodb.UPDATE_EXPRESSION_CACHE.problems() == []


def _traversals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The processors each validation runs (dynamodb._traverse), by class name, from now on."""
    ran: list[str] = []
    traverse = dynamodb._traverse

    def counting(processor: Any, node: Any) -> Any:
        ran.append(type(processor).__name__)
        return traverse(processor, node)

    monkeypatch.setattr(dynamodb, "_traverse", counting)
    return ran


def test_a_new_items_update_is_validated_once_and_a_stored_ones_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the submission's shape of update, its structure already checked once
    expression = "SET a = if_not_exists(a, :v), #t = if_not_exists(#t, :w)"
    request = {"TableName": "T", "UpdateExpression": expression, "ExpressionAttributeNames": {"#t": "type"}}
    values = {":v": VALUES[":v"], ":w": VALUES[":w"]}
    with _table(cached=True) as client:
        client.update_item(Key={"pk": {"S": "warm"}}, ExpressionAttributeValues=values, **request)
        ran = _traversals(monkeypatch)
        # When it creates an item, and then updates the stored one
        client.update_item(Key={"pk": {"S": "new"}}, ExpressionAttributeValues=values, **request)
        created = list(ran)
        ran.clear()
        client.update_item(Key={"pk": {"S": "new"}}, ExpressionAttributeValues=values, **request)
        item = client.get_item(TableName="T", Key={"pk": {"S": "new"}})["Item"]
    # Then each ran the value-binding processors once (moto: twice for the new item, on a keyless item first)
    assert created == ran == ["ExpressionAttributeValueProcessor", *ran[1:]] and len(ran) == 7, (created, ran)
    assert item == {"pk": {"S": "new"}, "a": {"S": "new"}, "type": {"S": "other"}}


def test_a_new_items_update_that_fails_leaves_no_item_and_no_stream_record() -> None:
    with _table(cached=True) as client:
        # When an update of an absent key fails its validation (the attribute it adds to does not exist)
        with pytest.raises(ClientError) as info:
            client.update_item(
                TableName="T",
                Key={"pk": {"S": "refused"}},
                UpdateExpression="SET absent = absent + :one",
                ExpressionAttributeValues={":one": VALUES[":one"]},
            )
        table = dynamodb_backends[ACCOUNT][REGION].get_table("T")
        records = list(table.stream_shard.items)
        found = client.get_item(TableName="T", Key={"pk": {"S": "refused"}})
    # Then it is DynamoDB's ValidationException, and the table and its stream are as before
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "attribute that does not exist" in info.value.response["Error"]["Message"]
    assert "Item" not in found and records == []


@pytest.mark.parametrize(
    ("expression", "names", "named"),
    [
        ("SET a = if_not_exists(a, :v), #t = :w", {"#t": "type"}, False),
        ("SET a = pk", {}, True),
        ("SET a = #k", {"#k": "pk"}, True),
        ("SET m.pk = :v", {}, True),  # a nested pk is not the key, but the plain check is enough to stay moto's
        ("REMOVE a", {}, False),
    ],
)
def test_a_new_items_validation_is_run_once_only_where_no_key_attribute_is_named(
    expression: str, names: dict[str, str], named: bool
) -> None:
    tree = original(UpdateExpressionParser, "make").__func__(UpdateExpressionParser, expression)
    key = (expression, dict, tuple(sorted(names.items())), ("pk",))
    assert dynamodb._names_a_key(key, tree) is named
