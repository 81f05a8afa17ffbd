"""The capacity model (taskrail/capacity/): the quota file, the template and definitions read, each limit's
arithmetic, the bottleneck, the advice to double it, and the burst simulation on cases small enough to check by hand.

The design here is a made-up template and a three-state definition, so every figure below follows from a few
numbers in this file; the real template is read by test_capacity_cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from taskrail.capacity import quotas as q
from taskrail.capacity.design import PathLoad, path_loads, read_design
from taskrail.capacity.model import Settings, advice, path_limits
from taskrail.capacity.quotas import QuotaBook, UnknownQuota, load_quotas
from taskrail.capacity.simulate import Bucket, Burst, simulate

# --------------------------------------------------------------------------------------------------
# A small design: POST /tasks -> table (status index) -> start pipe -> Claim, Work (λ), Done -> outbox pipe -> λ
# --------------------------------------------------------------------------------------------------

LIFECYCLE: dict[str, Any] = {
    "StartAt": "Claim",
    "States": {
        "Claim": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
            "Parameters": {
                "UpdateExpression": "SET #status = :running, startedAt = :now",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":running": {"S": "RUNNING"}, ":now": {"S.$": "$$.State.EnteredTime"}},
            },
            "Next": "Work",
        },
        "Work": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${WorkFunctionArn}"},
            "Next": "Done",
        },
        "Done": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::dynamodb:updateItem",
            "Parameters": {
                "UpdateExpression": "SET #status = :done, outcomePending = :done",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":done": {"S": "SUCCEEDED"}},
            },
            "End": True,
        },
    },
}
DEFINITIONS = {"lifecycle": LIFECYCLE, "recorder": {"States": {}}}
PUT_ITEM = ":apigateway:x:dynamodb:action/PutItem"
OUTCOME_FILTER = {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"outcomePending": {"S": ["SUCCEEDED"]}}}}


def _function(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"MemorySize": 256, "Timeout": 30},
        "Metadata": {"aws:cdk:path": f"app/Functions/{name}/Resource"},
    }


def make_template(
    *,
    stage_rate: float = 30,
    stage_burst: float = 30,
    outbox_pf: int = 1,
    kind: str = "STANDARD",
    outbox_batch: int = 1,
) -> dict[str, Any]:
    stream = {"Fn::GetAtt": ["Tasks", "StreamArn"]}
    return {
        "Resources": {
            "Tasks": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [{"AttributeName": "taskId", "KeyType": "HASH"}],
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "status-createdAt",
                            "KeySchema": [
                                {"AttributeName": "status", "KeyType": "HASH"},
                                {"AttributeName": "createdAt", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        }
                    ],
                },
            },
            "Lifecycle": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"StateMachineType": kind}},
            "WorkFunction": _function("WorkFunction"),
            "OutboxFunction": _function("OutboxFunction"),
            "StartPipe": {
                "Type": "AWS::Pipes::Pipe",
                "Properties": {
                    "Source": stream,
                    "SourceParameters": {
                        "DynamoDBStreamParameters": {"BatchSize": 1, "ParallelizationFactor": 10},
                        "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]},
                    },
                    "Target": {"Ref": "Lifecycle"},
                },
                "Metadata": {"aws:cdk:path": "app/Pipes/StartPipe"},
            },
            "OutboxPipe": {
                "Type": "AWS::Pipes::Pipe",
                "Properties": {
                    "Source": stream,
                    "SourceParameters": {
                        "DynamoDBStreamParameters": {"BatchSize": outbox_batch, "ParallelizationFactor": outbox_pf},
                        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(OUTCOME_FILTER)}]},
                    },
                    "Target": {"Fn::GetAtt": ["OutboxFunction", "Arn"]},
                },
                "Metadata": {"aws:cdk:path": "app/Pipes/OutboxPipe"},
            },
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {
                    "MethodSettings": [
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "ThrottlingRateLimit": stage_rate,
                            "ThrottlingBurstLimit": stage_burst,
                        }
                    ]
                },
            },
            "Submit": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "POST",
                    "Integration": {
                        "Uri": {
                            "Fn::Join": [
                                "",
                                ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:x:dynamodb:action/PutItem"],
                            ]
                        },
                        "RequestTemplates": {
                            "application/json": '{"Item": {"taskId": {"S": "$context.requestId"}, '
                            '"status": {"S": "QUEUED"}, "createdAt": {"N": "$context.requestTimeEpoch"}}}'
                        },
                    },
                },
            },
        }
    }


# Durations and shards chosen so each limit is a round number: the outbox takes 2 shards x PF x 1 / (75 + 25 ms).
SETTINGS = Settings(
    region="us-east-1",
    shards=2,
    function_ms={"WorkFunction": 50.0, "OutboxFunction": 75.0},
    invoke_overhead_ms=25.0,
    start_execution_ms=20.0,
)


@pytest.fixture(scope="module")
def book() -> QuotaBook:
    return load_quotas()


def _design(**kwargs: Any) -> Any:
    return read_design(make_template(**kwargs))


def _happy(design: Any) -> PathLoad:
    return path_loads(design, LIFECYCLE)["happy"]


def _with(book: QuotaBook, key: str, **figures: Any) -> QuotaBook:
    """The book with one quota's figures replaced (a small account, for hand-checked runs)."""
    quota = book[key].model_copy(update=figures)
    return book.model_copy(update={"quotas": {**book.quotas, key: quota}})


# --------------------------------------------------------------------------------------------------
# The quota file
# --------------------------------------------------------------------------------------------------


def test_every_known_quota_cites_an_aws_page_and_the_day_it_was_checked(book: QuotaBook) -> None:
    known = [quota for quota in book.quotas.values() if quota.known]
    assert len(known) >= 18
    for quota in known:
        assert quota.source is not None and quota.source.url.startswith("https://docs.aws.amazon.com/"), quota.name
        assert quota.source.title and quota.checked.isoformat() == "2026-12-01"


def test_an_unknown_quota_has_no_figure_and_refuses_to_give_one(book: QuotaBook) -> None:
    unknown = book.unknown()
    assert {"stepfunctions.redrive_execution", "sns.publish", "dynamodb.streams.get_records_per_shard"} <= set(unknown)
    with pytest.raises(UnknownQuota, match="unknown"):
        unknown["sns.publish"].at("us-east-1")


def test_a_figure_without_a_source_is_refused(book: QuotaBook) -> None:
    entry = book[q.LAMBDA_CONCURRENCY].model_dump(mode="json")
    entry["source"] = None
    with pytest.raises(ValidationError, match="needs its source"):
        type(book[q.LAMBDA_CONCURRENCY]).model_validate(entry)


def test_per_region_figures_fall_back_to_the_default(book: QuotaBook) -> None:
    start = book[q.SFN_STANDARD_START]
    assert (start.at("us-east-1", "bucket"), start.at("us-east-1", "refill_per_second")) == (1300, 300)
    assert (start.at("ap-south-1", "bucket"), start.at("ap-south-1", "refill_per_second")) == (800, 150)
    transitions = book[q.SFN_STANDARD_TRANSITIONS]
    assert transitions.at("eu-west-1", "refill_per_second") == 1500
    assert transitions.at("eu-central-1", "refill_per_second") == 500


# --------------------------------------------------------------------------------------------------
# The design read
# --------------------------------------------------------------------------------------------------


def test_the_template_gives_the_pipes_stage_throttle_and_intake() -> None:
    design = _design(stage_rate=30, stage_burst=60, outbox_pf=3)
    assert (design.start_pipe.name, design.start_pipe.parallelization_factor, design.start_pipe.batch_size) == (
        "StartPipe",
        10,
        1,
    )
    assert design.outbox_pipe is not None and design.outbox_pipe.parallelization_factor == 3
    assert (design.stage_rate, design.stage_burst, design.stream_readers) == (30, 60, 2)
    assert design.intake == {"taskId": None, "status": "QUEUED", "createdAt": None}
    assert set(design.functions) == {"WorkFunction", "OutboxFunction"}


def test_an_update_item_intake_is_read_through_its_names_and_values() -> None:
    template = make_template()
    integration = template["Resources"]["Submit"]["Properties"]["Integration"]
    integration["Uri"] = "arn:aws:apigateway:x:dynamodb:action/UpdateItem"
    integration["RequestTemplates"]["application/json"] = json.dumps(
        {
            "Key": {"taskId": {"S": "$context.requestId"}},
            "UpdateExpression": "SET #status = if_not_exists(#status, :queued), createdAt = :now REMOVE gone",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":queued": {"S": "QUEUED"}, ":now": {"N": "$context.requestTimeEpoch"}},
        }
    )
    design = read_design(template)
    assert design.intake == {"taskId": None, "status": "QUEUED", "createdAt": None}
    assert path_loads(design, LIFECYCLE)["happy"].index_writes["status-createdAt"]["QUEUED"] == 2


def test_a_vtl_value_with_quotes_of_its_own_is_read_as_computed() -> None:
    from taskrail.capacity.design import _request_attributes

    vtl = """{
  "Item": {
    "userId": {"S": "$util.escapeJavaScript($owner).replaceAll("\\\\'", "'")"},
    "status": {"S": "QUEUED"},
  }
}"""
    assert _request_attributes(vtl) == {"status": "QUEUED", "userId": None}


def test_a_path_counts_its_transitions_invocations_outcomes_and_index_writes() -> None:
    load = _happy(_design())
    assert load.states == ("Claim", "Work", "Done")
    assert (load.transitions, load.start_executions) == (3, 1)
    assert load.lambda_invocations == {"WorkFunction": 1, "OutboxFunction": 1}
    assert load.outbox_deliveries == 1
    # The status key: put at QUEUED, moved to RUNNING (delete + put), moved to SUCCEEDED (delete + put).
    assert load.index_writes == {"status-createdAt": {"QUEUED": 2, "RUNNING": 2, "SUCCEEDED": 1}}
    assert load.item_writes == 3
    assert load.write_units(_design(), 1.0) == 3 + 5


# --------------------------------------------------------------------------------------------------
# Limits, bottleneck, doubling
# --------------------------------------------------------------------------------------------------


def test_each_limit_is_its_figure_over_what_one_task_uses(book: QuotaBook) -> None:
    design = _design()
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    by_key = {limit.key: limit.capacity for limit in capacity.limits}
    assert by_key["pipe.OutboxPipe"] == pytest.approx(2 * 1 * 1 / 0.100)  # 20/s
    assert by_key["api.stage"] == 30
    assert by_key["pipe.StartPipe"] == pytest.approx(2 * 10 * 1 / 0.020)  # 1,000/s
    assert by_key[q.SFN_STANDARD_TRANSITIONS] == pytest.approx(1500 / 3)
    assert by_key[q.SFN_STANDARD_START] == 300
    assert by_key["dynamodb.hot_key:status-createdAt=QUEUED"] == 500  # 1,000 WU/s per partition / 2 writes
    assert by_key[q.LAMBDA_CONCURRENCY] == pytest.approx(1000 / (0.050 + 0.075))
    assert by_key[q.DDB_TABLE_WRITES] == pytest.approx(40000 / 8)


def test_an_outbox_batch_pays_the_invoke_overhead_once_and_the_handler_per_record(book: QuotaBook) -> None:
    design = _design(outbox_batch=5)  # one batch: 25 + 5 x 75 ms = 400 ms for 5 records, on each of 2 shards
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    assert {limit.key: limit.capacity for limit in capacity.limits}["pipe.OutboxPipe"] == pytest.approx(25)


def test_the_bottleneck_is_the_lowest_sustained_limit(book: QuotaBook) -> None:
    design = _design(outbox_pf=2)  # the outbox gives 40/s: the API stage's 30/s is now lowest
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    assert (capacity.bottleneck.key, capacity.sustained) == ("api.stage", 30)
    # A new table's warm throughput is reported, not a sustained limit: 4,000 WU/s / 8 = 500/s, kept out.
    warm = next(limit for limit in capacity.limits if limit.key == q.DDB_WARM_WRITES)
    assert not warm.sustained and warm.capacity == 500


def test_a_reader_past_the_streams_two_is_reported_as_a_risk_not_a_rate(book: QuotaBook) -> None:
    # Given the live-progress push pipe as a third reader of the Tasks stream
    design = dataclasses.replace(_design(outbox_pf=2), stream_readers=3)
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    # Then the readers line is there, not sustained, and the bottleneck is still the lowest sustained limit
    readers = next(limit for limit in capacity.limits if limit.key == q.STREAM_READERS)
    assert not readers.sustained and readers.limit == "2 readers per shard" and readers.per_task == "3 readers"
    assert (capacity.bottleneck.key, capacity.sustained) == ("api.stage", 30)
    # Two readers: no such line
    two = path_limits(_design(outbox_pf=2), _happy(_design(outbox_pf=2)), book, SETTINGS)
    assert q.STREAM_READERS not in {limit.key for limit in two.limits}


def test_doubling_raises_every_limit_below_twice_the_rate(book: QuotaBook) -> None:
    design = _design()
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    assert capacity.sustained == pytest.approx(20)  # the outbox; doubling asks for 40/s
    texts = [a.text for a in capacity.to_double()]
    assert texts == [
        "set ParallelizationFactor of OutboxPipe from 1 to 2",
        "set MethodSettings ThrottlingRateLimit of Stage from 30 to 40",
    ]


def test_doubling_past_a_settings_maximum_says_so_and_a_quota_is_a_request(book: QuotaBook) -> None:
    design = _design(outbox_pf=10, stage_rate=10_000)  # the outbox: 200/s at its maximum factor
    small = _with(book, q.SFN_STANDARD_TRANSITIONS, refill_per_second={"default": 300.0}, bucket={"default": 300.0})
    capacity = path_limits(design, _happy(design), small, SETTINGS)
    assert capacity.bottleneck.key == q.SFN_STANDARD_TRANSITIONS and capacity.sustained == 100  # 300 / 3
    texts = [a.text for a in advice(capacity.sustained_limits, 400)]
    assert texts[0].startswith("request a quota increase: StateTransition throttle (Standard workflows) from 300 to")
    assert "1,200" in texts[0]
    assert any(
        "ParallelizationFactor of OutboxPipe is 10; 400 tasks/s needs 20, above its maximum 10" in t for t in texts
    )


def test_what_if_changes_a_setting_before_the_model_reads_it(book: QuotaBook) -> None:
    from taskrail.capacity.design import with_settings

    design = with_settings(_design(), {"OutboxPipe.ParallelizationFactor": 4, "ThrottlingRateLimit": 60})
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    keys = {limit.key: limit.capacity for limit in capacity.limits}
    assert keys["pipe.OutboxPipe"] == pytest.approx(80) and keys["api.stage"] == 60
    assert capacity.bottleneck.key == "api.stage"
    with pytest.raises(ValueError, match=r"unknown setting 'Nope\.BatchSize'"):
        with_settings(_design(), {"Nope.BatchSize": 2})


def test_the_region_picks_its_class_of_step_functions_quotas(book: QuotaBook) -> None:
    design = _design(stage_rate=10_000, outbox_pf=10)
    frankfurt = path_limits(design, _happy(design), book, Settings(region="eu-central-1", shards=2))
    keys = {limit.key: limit.capacity for limit in frankfurt.limits}
    assert keys[q.SFN_STANDARD_TRANSITIONS] == pytest.approx(500 / 3)
    assert keys[q.SFN_STANDARD_START] == 150
    assert keys[q.EVENTS_PUT] == 2400
    assert frankfurt.bottleneck.key == q.SFN_STANDARD_START


def test_an_express_lifecycle_has_no_transition_bucket_and_the_express_start_bucket(book: QuotaBook) -> None:
    design = _design(kind="EXPRESS", stage_rate=10_000, outbox_pf=10)
    capacity = path_limits(design, _happy(design), book, SETTINGS)
    keys = {limit.key: limit for limit in capacity.limits}
    assert q.SFN_STANDARD_TRANSITIONS not in keys and q.SFN_OPEN_EXECUTIONS not in keys
    assert keys[q.SFN_EXPRESS_START].capacity == 6000


# --------------------------------------------------------------------------------------------------
# Buckets and the simulation
# --------------------------------------------------------------------------------------------------


def test_a_token_bucket_starts_full_refills_at_its_rate_and_keeps_at_most_its_size() -> None:
    bucket = Bucket(size=10, refill=5)
    assert bucket.tokens == 10
    bucket.tokens -= 10
    assert bucket.step(1.0) == 5
    assert bucket.step(0.4) == 7
    # A long step may spend what refills during it; what is left unspent is kept only up to the size.
    assert bucket.step(100) == 7 + 500
    assert bucket.step(0.1) == 10 + 0.5


def _run(book: QuotaBook, design: Any, tasks: int, over: float) -> Any:
    load = _happy(design)
    capacity = path_limits(design, load, book, SETTINGS)
    return simulate(
        design,
        load,
        book,
        SETTINGS,
        Burst(tasks, over),
        sustained=capacity.sustained,
        definitions={"lifecycle": LIFECYCLE},
    )


def test_a_burst_held_by_the_stage_throttle_waits_at_the_clients(book: QuotaBook) -> None:
    # 1,000 tasks in 1 s against 100/s with a burst of 100: by 1 s the API took 100 + 100, so 800 wait;
    # the rest is accepted at 100/s, the last at (1,000 - 100) / 100 = 9 s.
    design = _design(stage_rate=100, stage_burst=100, outbox_pf=10)
    result = _run(book, design, 1000, 1.0)
    assert result.dt == pytest.approx(0.1)
    assert result.peak_client_backlog == pytest.approx(800, abs=15)
    assert result.accepted_at_s == pytest.approx(9.0, abs=0.15)
    # Then five stages (API, start pipe, Claim, Work, Done), each at least one 0.1 s step: terminal at 9.0 + 0.6.
    assert result.finished_at_s == pytest.approx(9.6, abs=0.15)
    # Downstream keeps up: what is stored is only the first burst (100) and what is in flight (100/s x 0.5 s).
    assert 100 <= result.peak_backlog <= 150
    assert next(iter(result.limited_s)) == "api.stage"


def test_a_burst_held_by_the_outbox_drains_at_its_rate(book: QuotaBook) -> None:
    # 200 tasks at once, everything ample but the outbox at 20/s: every task finishes within a second or so,
    # the last outcome is delivered after 200 / 20 = 10 s.
    design = _design(stage_rate=10_000, stage_burst=10_000, outbox_pf=1)
    result = _run(book, design, 200, 0.1)
    assert result.finished_at_s is not None and result.finished_at_s < 1.5
    assert result.delivered_at_s == pytest.approx(10.5, abs=0.6)
    assert result.peak_outbox_backlog == pytest.approx(200, abs=20)


def test_a_burst_held_by_the_transition_bucket_drains_at_its_refill(book: QuotaBook) -> None:
    # 300 tasks x 3 transitions = 900 tokens from a bucket of 30 refilled at 30/s: (900 - 30) / 30 = 29 s.
    design = _design(stage_rate=10_000, stage_burst=10_000, outbox_pf=10)
    small = _with(book, q.SFN_STANDARD_TRANSITIONS, refill_per_second={"default": 30.0}, bucket={"default": 30.0})
    load = _happy(design)
    capacity = path_limits(design, load, small, SETTINGS)
    assert capacity.sustained == 10
    result = simulate(
        design,
        load,
        small,
        SETTINGS,
        Burst(300, 0.1),
        sustained=capacity.sustained,
        definitions={"lifecycle": LIFECYCLE},
    )
    assert result.finished_at_s == pytest.approx(29.0, abs=0.6)
    assert next(iter(result.limited_s)) == "stepfunctions.transitions"
    assert result.peak_backlog == pytest.approx(300, abs=1)


def test_the_simulation_is_deterministic(book: QuotaBook) -> None:
    design = _design()
    first, second = _run(book, design, 5000, 10.0), _run(book, design, 5000, 10.0)
    assert first == second
    assert not math.isnan(first.peak_backlog)


def test_a_cost_runs_measurements_replace_the_assumed_durations_and_transitions() -> None:
    from types import SimpleNamespace

    from taskrail.capacity import measured_overrides

    def use(function: str, *ms: float) -> SimpleNamespace:
        return SimpleNamespace(function=f"taskrail-{function}", durations_ms=ms)

    report = SimpleNamespace(
        profiles={
            "taskrail": {
                "happy": SimpleNamespace(transitions=6, lambdas=[use("Work", 10, 30, 20)]),
                "failed": SimpleNamespace(transitions=7, lambdas=[use("Work", 500), use("Recorder", 40, 60)]),
            }
        }
    )
    durations, transitions = measured_overrides(report)
    assert durations == {"Work": 20.0, "Recorder": 50.0}  # the happy path's median; others where it has none
    assert transitions == {"happy": 6, "failed": 7}
