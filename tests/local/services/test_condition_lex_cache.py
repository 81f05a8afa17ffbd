"""A condition expression lexed once (taskrail/local/services/dynamodb.py, CONDITION_LEX_CACHE): a speed patch, so
every parse must be moto's own. A corpus of condition and filter expressions (comparisons, functions, BETWEEN, IN,
NOT, nested parentheses, paths with names and indexes, and the errors moto answers: syntax, redundant parentheses,
a reserved word, undefined names and values) is parsed twice over with moto's code and with the cache, each with
two sets of names and values: the names and values found, the verdict on every item of a sample, and every error
must be the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from taskrail.local.services import dynamodb

CORPUS = [
    "attribute_not_exists(taskId) OR (userId = :owner AND #type = :type AND params = :params)",
    "attribute_exists(taskId) AND #status IN (:queued, :running)",
    "#status = :queued",
    "attempt < :max AND NOT (#status = :done)",
    "progress BETWEEN :low AND :high",
    "begins_with(userId, :prefix) OR contains(tags, :tag)",
    "size(params) > :low",
    "m.inner.deep = :low",
    "l[0] = :owner",
    "#m.#k = :owner",
    "attribute_type(progress, :n)",
    "((#status = :queued))",
    "#status <> :queued",
    "a = :low AND b = :low OR c = :high",
    "#status = :queued AND",
    "= :queued",
    "size = :low",
    "#nope = :low",
    "#status = :undefined",
    "attribute_not_exists(taskId)",
]
NAMES = [{"#type": "type", "#status": "status", "#m": "m", "#k": "inner"}, {"#type": "kind", "#status": "state"}]
VALUES = [
    {
        ":owner": {"S": "alice"},
        ":type": {"S": "text.stats"},
        ":params": {"S": "{}"},
        ":queued": {"S": "QUEUED"},
        ":running": {"S": "RUNNING"},
        ":done": {"S": "SUCCEEDED"},
        ":max": {"N": "3"},
        ":low": {"N": "1"},
        ":high": {"N": "50"},
        ":prefix": {"S": "al"},
        ":tag": {"S": "x"},
        ":n": {"S": "N"},
    },
    {
        ":owner": {"S": "bob"},
        ":type": {"S": "csv.summary"},
        ":params": {"S": '{"a": 1}'},
        ":queued": {"S": "RUNNING"},
        ":running": {"S": "QUEUED"},
        ":done": {"S": "FAILED"},
        ":max": {"N": "0"},
        ":low": {"N": "7"},
        ":high": {"N": "8"},
        ":prefix": {"S": "b"},
        ":tag": {"S": "y"},
        ":n": {"S": "S"},
    },
]


def _item(**attributes: Any) -> Item:
    return Item(DynamoType({"S": "t-1"}), None, attrs={"taskId": {"S": "t-1"}, **attributes})


ITEMS = [
    None,
    _item(userId={"S": "alice"}, type={"S": "text.stats"}, params={"S": "{}"}, status={"S": "QUEUED"}),
    _item(
        userId={"S": "bob"},
        kind={"S": "csv.summary"},
        state={"S": "RUNNING"},
        attempt={"N": "2"},
        progress={"N": "7"},
        tags={"SS": ["x", "y"]},
        m={"M": {"inner": {"M": {"deep": {"N": "1"}}}}},
        l={"L": [{"S": "alice"}]},
        a={"N": "7"},
        b={"N": "7"},
        c={"N": "8"},
    ),
]


def _parse_all() -> list[Any]:
    outcomes: list[Any] = []
    for _round in range(2):
        for expression in CORPUS:
            for names, values in zip(NAMES, VALUES, strict=True):
                parser = ConditionExpressionParser(expression, names, values)
                try:
                    op = parser.parse()
                except Exception as error:
                    outcomes.append((expression, "error", type(error).__name__, str(error)))
                    continue
                verdicts = []
                for item in ITEMS:
                    try:
                        verdicts.append(op.expr(item))
                    except Exception as error:
                        verdicts.append(f"{type(error).__name__}: {error}")
                found = (parser.expr_attr_names_found, parser.expr_attr_values_found)
                outcomes.append((expression, "parsed", found, verdicts))
    return outcomes


@pytest.fixture
def moto_outcomes() -> list[Any]:
    dynamodb.uninstall_condition_lex_cache()
    return _parse_all()


def test_the_corpus_parses_and_fails_and_tells_items_apart(moto_outcomes: list[Any]) -> None:
    kinds = {outcome[1] for outcome in moto_outcomes}
    verdicts = {str(v) for outcome in moto_outcomes if outcome[1] == "parsed" for v in outcome[3]}
    assert kinds == {"parsed", "error"}
    assert {"True", "False"} <= verdicts


def test_cached_tokens_parse_as_moto_does(moto_outcomes: list[Any]) -> None:
    dynamodb.install_condition_lex_cache()
    try:
        cached = _parse_all()
        assert dynamodb._lexed_conditions, "the cache was not used"
        assert dynamodb.CONDITION_LEX_CACHE.problems() == []
    finally:
        dynamodb.uninstall_condition_lex_cache()
    assert cached == moto_outcomes
