"""Pipes parity: filter syntax as Pipes evaluate it, on the records they deliver.

Evidence: "Comparison operators for use in event patterns in Amazon EventBridge"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html: each operator's rule
syntax and its "Pipe support" column), "Content filtering in Amazon EventBridge event patterns"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html: prefix on
strings, anything-but on strings and numbers, numeric ranges on numbers, exists true/false) and "Using event filtering
with a DynamoDB event source" (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html: DynamoDB records
are filtered on their dynamodb key, typed values such as {"S": [...]}). The first case runs through the local pipe on
the running moto server; the table cases evaluate the documented patterns on the documented record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from taskrail.local.pipes import matches, pipe_filter

# The record of the Lambda DynamoDB filtering page (CustomerName / AccountManager / PaymentTerms), as a pipe sees it.
RECORD = {
    "eventID": "1",
    "eventName": "INSERT",
    "eventVersion": "1.0",
    "eventSource": "aws:dynamodb",
    "awsRegion": "us-east-1",
    "dynamodb": {
        "ApproximateCreationDateTime": 1678831218.0,
        "Keys": {"CustomerName": {"S": "AnyCompany Industries"}},
        "NewImage": {
            "AccountManager": {"S": "Pat Candella"},
            "PaymentTerms": {"S": "60 days"},
            "CustomerName": {"S": "AnyCompany Industries"},
        },
        "SequenceNumber": "111",
        "SizeBytes": 26,
        "StreamViewType": "NEW_IMAGE",
    },
}


def on_image(attribute: str, rule: Any) -> dict[str, Any]:
    return {"dynamodb": {"NewImage": {attribute: rule}}}


CASES = [
    # (case, pattern, matches the record)
    ("key equals", {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}, True),
    ("key equals another value", {"dynamodb": {"Keys": {"CustomerName": {"S": ["Other"]}}}}, False),
    ("prefix", on_image("PaymentTerms", {"S": [{"prefix": "60"}]}), True),
    ("prefix that does not start the value", on_image("PaymentTerms", {"S": [{"prefix": "days"}]}), False),
    ("prefix ignoring case", on_image("AccountManager", {"S": [{"prefix": {"equals-ignore-case": "PAT"}}]}), True),
    ("suffix", on_image("PaymentTerms", {"S": [{"suffix": "days"}]}), True),
    ("equals-ignore-case", on_image("AccountManager", {"S": [{"equals-ignore-case": "pat candella"}]}), True),
    ("anything-but a value it has", on_image("PaymentTerms", {"S": [{"anything-but": "60 days"}]}), False),
    ("anything-but a list without its value", on_image("PaymentTerms", {"S": [{"anything-but": ["30 days"]}]}), True),
    ("anything-but on a missing field", on_image("Missing", {"S": [{"anything-but": "x"}]}), False),
    ("exists true on a present field", on_image("AccountManager", [{"exists": True}]), True),
    ("exists true on a missing field", on_image("Missing", [{"exists": True}]), False),
    ("exists false on a missing field", on_image("Missing", [{"exists": False}]), True),
    ("exists false on a present field", on_image("AccountManager", [{"exists": False}]), False),
    # numeric matching works on JSON numbers only: a DynamoDB number is the string of its digits
    ("numeric on a JSON number", {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 0]}]}}, True),
    ("numeric range", {"dynamodb": {"SizeBytes": [{"numeric": [">", 0, "<=", 26]}]}}, True),
    ("numeric range excluding", {"dynamodb": {"SizeBytes": [{"numeric": [">", 26]}]}}, False),
    ("numeric on a string", {"dynamodb": {"SequenceNumber": [{"numeric": [">", 0]}]}}, False),
    ("a string value does not equal a number", {"dynamodb": {"SequenceNumber": [111]}}, False),
    ("a number equals a number", {"dynamodb": {"SizeBytes": [26.0]}}, True),
    ("several fields: all must match", {"eventName": ["INSERT"], "dynamodb": {"StreamViewType": ["KEYS_ONLY"]}}, False),
    ("a list of values: any may match", {"eventName": ["MODIFY", "INSERT"]}, True),
    ("the empty string", on_image("PaymentTerms", {"S": [""]}), False),
]


@pytest.mark.parametrize(("case", "pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_documented_patterns_match_as_aws_evaluates_them(case: str, pattern: dict[str, Any], expected: bool) -> None:
    print(case, "->", matches(pattern, RECORD))
    assert matches(pattern, RECORD) is expected


@pytest.mark.parametrize(
    "operand", [{"prefix": "us-"}, {"suffix": ".png"}, {"equals-ignore-case": "initializing"}, {"wildcard": "*/lib/*"}]
)
def test_anything_but_forms_that_pipes_do_not_support_are_refused(operand: dict[str, str]) -> None:
    pattern = json.dumps({"dynamodb": {"NewImage": {"Region": {"S": [{"anything-but": operand}]}}}})
    with pytest.raises(ValueError, match="bus-only") as refused:
        pipe_filter(pattern)
    print(refused.value)


def test_a_pattern_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        pipe_filter('["INSERT"]')


def test_the_running_pipe_delivers_only_the_records_its_filter_matches(make_pipe: Callable[..., Any]) -> None:
    # MODIFY records whose new Message starts with "This"
    rule = {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"Message": {"S": [{"prefix": "This"}]}}}}
    pipe = make_pipe(filters=[pipe_filter(json.dumps(rule))], input_template='"<$.dynamodb.NewImage.Message.S>"')
    dynamodb = pipe.clients("dynamodb")
    for message in ("New item!", "This item has changed", "Not this one", "This is the last"):
        dynamodb.put_item(TableName=pipe.table, Item={"Id": {"N": "101"}, "Message": {"S": message}})
    dynamodb.delete_item(TableName=pipe.table, Key={"Id": {"N": "101"}})
    dynamodb.put_item(TableName=pipe.table, Item={"Id": {"N": "102"}, "Message": {"S": "This is an INSERT"}})
    dynamodb.put_item(TableName=pipe.table, Item={"Id": {"N": "102"}, "Message": {"S": "This ends the stream"}})

    # records of one shard are read in order: once the last one arrived, every earlier one was filtered
    batches = pipe.deliveries(3)

    print("delivered", batches, "count", pipe.delivered())
    assert sorted(batches) == [["This ends the stream"], ["This is the last"], ["This item has changed"]]
    assert pipe.delivered() == 3
