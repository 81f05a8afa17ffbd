"""The cost model (taskrail/cost.py): transitions read from the real definition, its arithmetic on fixed inputs,
and the price file (every price cites its source)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from taskrail import cost
from taskrail.cost import (
    ASL_PATH,
    EXPRESS,
    HAPPY_PATH_TARGET,
    PATHS,
    PRICES_PATH,
    STANDARD,
    Assumptions,
    IndexInfo,
    ItemImages,
    LambdaUse,
    PathProfile,
    TableInfo,
)

DEFINITION = cost.load_definition(ASL_PATH)


# -- transitions, from the generated definition -------------------------------------------------------


def test_happy_path_of_the_generated_definition_is_at_most_eight_billable_transitions():
    path = cost.happy_path(DEFINITION)

    assert len(path) <= HAPPY_PATH_TARGET
    assert path[0] == DEFINITION["StartAt"]
    assert DEFINITION["States"][path[-1]]["Type"] == "Succeed"
    assert "ProcessTask" in path


def test_retried_failed_and_replayed_paths_read_from_the_definition():
    happy, retried, failed, replayed = PATHS
    main_path = cost.happy_path(DEFINITION)

    assert cost.definition_transitions(DEFINITION, happy) == len(main_path)
    assert cost.definition_transitions(DEFINITION, retried) == len(main_path) + 2  # each retry is a transition
    # A processing error is not caught (issue 19): the execution fails at ProcessTask, where a redrive resumes
    with pytest.raises(ValueError, match="does not catch"):
        cost.catch_target(DEFINITION, "ProcessTask", "PermanentTaskError")
    assert cost.definition_transitions(DEFINITION, failed) == main_path.index("ProcessTask") + 1
    assert replayed.replayed and replayed.expected_status == "SUCCEEDED"
    assert cost.definition_transitions(DEFINITION, replayed) is None  # two runs' worth: measured only


def test_a_caught_failure_of_an_earlier_definition_is_read_through_its_catch():
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {"Type": "Task", "Next": "Done", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record"}]},
            "Record": {"Type": "Task", "Next": "Failed"},
            "Failed": {"Type": "Fail"},
            "Done": {"Type": "Succeed"},
        },
    }
    spec = cost.PathSpec("failed", "t", {}, "FAILED", "", failing_state="Process", error="Boom")

    assert cost.definition_transitions(definition, spec) == 3


def test_billable_transitions_count_every_state_entered_and_every_retry():
    events = [{"type": "ExecutionStarted"}]
    for name, outcomes in (("Claim", ["ok"]), ("Process", ["TransientTaskError", "TransientTaskError", "ok"])):
        events.append({"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}})
        for outcome in outcomes:
            events.append({"type": "TaskScheduled"})
            if outcome == "ok":
                events.append({"type": "TaskSucceeded"})
            else:
                events.append({"type": "TaskFailed", "taskFailedEventDetails": {"error": outcome}})
        events.append({"type": "TaskStateExited", "stateExitedEventDetails": {"name": name}})
    events += [
        {"type": "SucceedStateEntered", "stateEnteredEventDetails": {"name": "Done"}},
        {"type": "ExecutionSucceeded"},
    ]

    visits = cost.state_visits(events)

    assert [(v.name, v.attempts) for v in visits] == [("Claim", 1), ("Process", 3), ("Done", 1)]
    assert visits[1].errors == ("TransientTaskError", "TransientTaskError")
    assert cost.billable_transitions(visits) == 5


def test_a_redrive_bills_one_transition_beside_the_states_it_reruns():
    # Given a redriven execution's history (it failed at Process, was redriven, and Process and Done ran again)
    # and the failure recorder's 4 transitions for the first failure
    from taskrail.cost.measure import REDRIVE_TRANSITIONS, billed_transitions, redrives_in

    def entered(name: str, kind: str = "Task") -> dict[str, object]:
        return {"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name}}

    events = [
        {"type": "ExecutionStarted"},
        entered("Process"),
        {"type": "TaskScheduled"},
        {"type": "TaskFailed", "taskFailedEventDetails": {"error": "PermanentTaskError"}},
        {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "PermanentTaskError"}},
        {"type": "ExecutionRedriven", "executionRedrivenEventDetails": {"redriveCount": 1}},
        entered("Process"),
        {"type": "TaskScheduled"},
        {"type": "TaskSucceeded"},
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Process"}},
        entered("Done", "Succeed"),
        {"type": "ExecutionSucceeded"},
    ]
    visits = cost.state_visits(events)

    # Then the redrive is one more transition ("Execution redrives are considered as state transitions",
    # "Redriving executions"): 3 states entered + 1 redrive + the recorder's 4
    assert (len(visits), redrives_in(events), REDRIVE_TRANSITIONS) == (3, 1, 1)
    assert billed_transitions(visits, redrives=redrives_in(events), recorder=4) == 8
    assert billed_transitions(visits, recorder=4) == 7  # a new execution instead: no redrive to bill


def test_mean_full_jitter_wait_is_half_the_capped_backoff():
    retrier = {"IntervalSeconds": 1, "BackoffRate": 2, "MaxDelaySeconds": 3, "JitterStrategy": "FULL"}

    assert [cost.expected_retry_wait_seconds(retrier, k) for k in range(4)] == [0.5, 1.0, 1.5, 1.5]
    assert cost.expected_retry_wait_seconds({"IntervalSeconds": 2}, 1) == 4.0


# -- arithmetic on fixed inputs --------------------------------------------------------------------------


def fixed_prices() -> cost.PriceBook:
    """Round numbers, so every expected figure below can be checked by hand."""
    source = "https://aws.amazon.com/pricing/"
    data = {
        "region": "test",
        "currency": "USD",
        "as_of": "fixed",
        "prices": {
            key: {"usd": usd, "per": per, "unit": "u", "source": source}
            for key, usd, per in (
                (cost.SFN_TRANSITION, 25, 1000),  # $0.025 each
                (cost.SFN_EXPRESS_REQUEST, 1, 1000),  # $0.001 each
                (cost.SFN_EXPRESS_GB_SECOND, 1, 1),
                (cost.LAMBDA_REQUEST, 2, 1000),
                ("lambda.duration_gb_second.arm64", 10, 1),
                ("lambda.duration_gb_second.x86_64", 20, 1),
                (cost.DDB_WRITE, 1, 100),
                (cost.DDB_READ, 1, 1000),
                (cost.S3_PUT, 5, 1000),
                (cost.S3_GET, 4, 10000),
                (cost.SNS_PUBLISH, 5, 1000),
                (cost.EVENTS_PUT, 1, 100),
                (cost.PIPES_REQUEST, 4, 1000),
                (cost.SQS_REQUEST, 4, 1000),
                (cost.APIGW_REQUEST, 35, 1000),
                (cost.LOGS_GB, 1, 1),  # $1 per GiB
            )
        },
        "billing": {
            key: {"value": value, "source": source}
            for key, value in (
                (cost.EXPRESS_DURATION_STEP, 100),
                (cost.EXPRESS_MEMORY_STEP, 64),
                (cost.LAMBDA_DURATION_STEP, 1),
                (cost.DDB_WRITE_KB, 1),
                (cost.DDB_READ_KB, 4),
            )
        },
    }
    return cost.parse_prices(data)


def fixed_profile() -> PathProfile:
    return PathProfile(
        name="happy",
        description="fixed",
        states=("A", "B"),
        transitions=8,
        attempts=(1, 1),
        lambdas=(
            LambdaUse("f", 1024, "arm64", (99.2, 200.0)),  # billed 100 ms + 200 ms at 1 GB: 0.3 GB-s
            LambdaUse("g", 512, "x86_64", (1000.0,)),  # 0.5 GB-s
        ),
        dynamodb_wru=19,
        dynamodb_rru=1,
        s3_put=1,
        s3_get=2,
        sns_publishes=1,
        events=1,
        sqs_requests=1,
        pipe_requests=1,
        api_requests=1,
        express_ms=250.0,
        express_memory_mb=50,
        log_bytes=2**30 / 100,
    )


def test_standard_arithmetic_on_fixed_inputs():
    items = cost.price_path(fixed_profile(), STANDARD, fixed_prices())

    assert items == pytest.approx(
        {
            "Step Functions": 8 * 0.025,
            "Lambda requests": 3 * 0.002,
            "Lambda duration": 0.3 * 10 + 0.5 * 20,
            "DynamoDB writes": 19 * 0.01,
            "DynamoDB reads": 1 * 0.001,
            "S3 requests": 1 * 0.005 + 2 * 0.0004,
            "SNS publishes": 0.005,
            "EventBridge events": 0.01,
            "EventBridge Pipes": 0.004,
            "SQS requests": 0.004,
            "API Gateway": 0.035,
            "CloudWatch Logs": 0.01,
        }
    )
    assert cost.per_million({"x": 0.0002})["x"] == pytest.approx(200.0)


def test_express_bills_duration_in_100_ms_steps_and_memory_in_64_mb_steps():
    prices = fixed_prices()

    express = cost.price_path(fixed_profile(), EXPRESS, prices)["Step Functions"]

    # 250 ms -> 0.3 s; 50 MB -> 64 MB = 0.0625 GB; $1 per GB-s; plus $0.001 per request
    assert express == pytest.approx(0.001 + 0.3 * 0.0625 * 1)
    with pytest.raises(ValueError, match="workflow type"):
        cost.price_path(fixed_profile(), "SYNC", prices)


def test_naive_design_adds_a_front_lambda_and_one_lambda_per_step():
    definition = {
        "StartAt": "Claim",
        "States": {
            "Claim": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem", "Next": "Work"},
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Notify"},
            "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Next": "Publish"},
            "Publish": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    ours = PathProfile(
        name="happy",
        description="",
        states=("Claim", "Work", "Notify", "Publish", "Done"),
        transitions=6,  # Claim retried once
        attempts=(2, 1, 1, 1, 1),
        lambdas=(LambdaUse("work", 256, "arm64", (10.0,)),),
        pipe_requests=1,
        express_ms=100.0,
    )
    assumptions = Assumptions(integration_ms={"dynamodb": 10.0, "sns": 20.0, "events": 30.0})
    a = assumptions

    naive = cost.naive_profile(ours, definition, assumptions, memory_mb=128, architecture="arm64")
    per_state = cost.naive_profile(
        ours, definition, assumptions, memory_mb=128, architecture="arm64", merge_notifications=False
    )

    assert naive.states == ("Claim", "Work", "Notify+Publish", "Done")
    assert naive.transitions == 5  # the two notification states are one Lambda step
    assert per_state.transitions == 6
    assert naive.pipe_requests == 0
    front, steps = naive.lambdas[1], naive.lambdas[2]
    assert front.durations_ms == (a.thin_handler_ms + 10.0 + a.start_execution_ms,)
    # Claim twice (retried), then notify once: each a thin handler around the same calls
    assert steps.durations_ms == (a.thin_handler_ms + 10.0, a.thin_handler_ms + 10.0, a.thin_handler_ms + 50.0)
    assert naive.lambda_invocations == 1 + 1 + 3
    assert naive.log_bytes == (1 + 3) * a.lambda_platform_log_bytes  # platform lines of the new Lambdas
    assert naive.express_ms == pytest.approx(
        100.0 - a.state_overhead_ms + 3 * (a.lambda_invoke_overhead_ms + a.thin_handler_ms)
    )


def test_compute_report_prices_every_design_and_states_the_targets():
    path = tuple(cost.happy_path(DEFINITION))
    profile = replace(fixed_profile(), states=path, attempts=(1,) * len(path), transitions=len(path))

    report = cost.compute_report([profile], DEFINITION, fixed_prices())

    assert {(c.design, c.workflow_type) for c in report.costs} == {
        (d, t) for d in cost.DESIGNS for t in cost.WORKFLOW_TYPES
    }
    ours = report.cost(cost.TASKRAIL, STANDARD, "happy")
    assert ours.items["Step Functions"] == pytest.approx(len(path) * 0.025 * 1_000_000)
    naive = report.cost(cost.NAIVE, STANDARD, "happy")
    assert naive.items["Lambda requests"] > ours.items["Lambda requests"]
    assert naive.items["EventBridge Pipes"] == 0
    assert report.targets[0].met
    assert json.dumps(cost.as_json(report))


def test_the_failure_paths_are_shown_beside_their_recorded_baseline():
    # Given the report's failed and replayed paths (a redrive, the failure recorder's 4 transitions included)
    path = tuple(cost.happy_path(DEFINITION))
    ran = {"states": path, "attempts": (1,) * len(path)}
    failed = replace(fixed_profile(), name="failed", transitions=7, recorder_transitions=4, outcome="FAILED", **ran)
    replayed = replace(
        fixed_profile(), name="replayed", transitions=11, recorder_transitions=4, replay_action="redriven",
        outbox_deliveries=2, pipe_requests=3, **ran,
    )  # fmt: skip
    baseline = {
        "commit": "43d0392189",
        "measuredAt": "2026-12-01",
        "paths": {
            "failed": {"transitions": 5, "replayAction": "", "standardTotal": 177.47, "expressTotal": 53.88},
            "replayed": {"transitions": 11, "replayAction": "started", "standardTotal": 367.45, "expressTotal": 94.8},
        },
    }
    report = replace(cost.compute_report([failed, replayed], DEFINITION, fixed_prices()), baseline=baseline)

    # When it is rendered
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(cost.render_cost_report(report))
    text = console.export_text()

    # Then each path reads before -> now, and the usage says what the recorder and the outbox add
    assert "before issue 19 (43d0392" in text
    assert "started → redriven" in text and "5 → 7" in text and "$367.45 →" in text
    assert "incl. recorder 4" in text and "3 (outbox 2)" in text
    data = cost.as_json(report)
    assert data["baseline"] == baseline
    assert data["profiles"]["taskrail"]["replayed"]["replayAction"] == "redriven"


def test_the_recorded_baseline_is_of_the_caught_design():
    baseline = json.loads(cost.BASELINE_PATH.read_text())

    assert len(baseline["commit"]) == 40
    assert baseline["paths"]["failed"]["states"][-2:] == ["RecordFailure", "TaskFailed"]
    assert baseline["paths"]["replayed"]["replayAction"] == "started"


def test_write_units_count_each_index_a_write_changes():
    table = TableInfo(
        "Tasks",
        frozenset({"taskId"}),
        (
            IndexInfo("by-user", frozenset({"userId", "createdAt"}), "ALL"),
            IndexInfo("by-status", frozenset({"status", "createdAt"}), "ALL"),
        ),
    )
    item = {"taskId": {"S": "t"}, "userId": {"S": "u"}, "status": {"S": "QUEUED"}, "createdAt": {"N": "1"}}
    progress = {
        "UpdateExpression": "SET #p = :p, updatedAt = :now",
        "ExpressionAttributeNames": {"#p": "progress"},
    }
    status = {"UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"}}

    assert cost.write_units("PutItem", {"Item": item}, table) == 3
    assert cost.write_units("UpdateItem", progress, table) == 3  # table + both indexes (projection ALL)
    assert cost.write_units("UpdateItem", status, table) == 4  # the status index entry moves: delete + put
    assert cost.write_units("UpdateItem", status, table, item_kb=2, before_kb=1) == 2 + 2 + (1 + 2)
    keys_only = TableInfo("T", frozenset({"taskId"}), (IndexInfo("s", frozenset({"status"}), "KEYS_ONLY"),))
    assert cost.write_units("UpdateItem", progress, keys_only) == 1
    # a KEYS_ONLY entry is one unit, whatever the item's size
    assert cost.write_units("UpdateItem", status, keys_only, item_kb=3, before_kb=3) == 3 + 1 + 1


def test_a_sparse_index_is_written_only_for_the_items_that_have_its_key():
    # Given a table with a sparse KEYS_ONLY index on outcomePending (the outbox's, issue 9)
    sparse = IndexInfo("outcomePending-createdAt", frozenset({"outcomePending", "createdAt"}), "KEYS_ONLY")
    table = TableInfo("T", frozenset({"taskId"}), (sparse,))
    base = {"taskId", "createdAt", "status"}
    pending = {"UpdateExpression": "SET outcomePending = :s", "ExpressionAttributeValues": {":s": {"S": "FAILED"}}}
    mark = {"UpdateExpression": "REMOVE outcomePending"}
    progress = {"UpdateExpression": "SET progress = :p", "ExpressionAttributeValues": {":p": {"N": "50"}}}

    # Then setting the key puts an entry (no delete), removing it deletes it (no put), other writes touch none
    assert cost.write_units("UpdateItem", pending, table, 3, 3, before_attributes=base,
                            after_attributes=base | {"outcomePending"}) == 3 + 1  # fmt: skip
    assert cost.write_units("UpdateItem", mark, table, 3, 3, before_attributes=base | {"outcomePending"},
                            after_attributes=base) == 3 + 1  # fmt: skip
    assert cost.write_units("UpdateItem", progress, table, 3, 3, before_attributes=base, after_attributes=base) == 3
    assert cost.read_units({"ConsistentRead": True}) == 1.0
    assert cost.read_units({}) == 0.5


def test_item_images_follow_the_writes():
    images = ItemImages()
    ident = ("Tasks", '{"taskId": {"S": "t"}}')
    put = {"Item": {"taskId": {"S": "t"}, "cause": {"S": "x" * 10}}}
    update = {
        "UpdateExpression": "SET #c = :c ADD attempt :one REMOVE gone",
        "ExpressionAttributeNames": {"#c": "cause"},
        "ExpressionAttributeValues": {":c": {"S": "y" * 3000}, ":one": {"N": "1"}},
    }

    assert images.apply(ident, "PutItem", put) == (None, 1)
    assert images.apply(ident, "UpdateItem", update) == (1, 3)
    assert images.apply(ident, "UpdateItem", {"UpdateExpression": "SET a = if_not_exists(a, :z)"}) == (3, None)
    assert cost.item_size_bytes({"ab": {"S": "cde"}, "n": {"N": "12345"}}) == 2 + 3 + 1 + 4


# -- the price file -------------------------------------------------------------------------------------


def test_every_price_and_billing_rule_in_the_price_file_cites_an_aws_source():
    data = json.loads(Path(PRICES_PATH).read_text())

    entries = {**data["prices"], **data["billing"]}
    assert entries
    for key, entry in entries.items():
        assert entry.get("source", "").startswith(("https://aws.amazon.com/", "https://docs.aws.amazon.com/")), (
            f"{key} has no AWS source"
        )
    assert data["as_of"] == "2026-11"
    assert data["region"] == "us-east-1"
    book = cost.load_prices()
    assert set(cost.REQUIRED_PRICES) <= set(book.prices)
    assert book.each(cost.SFN_TRANSITION) == pytest.approx(0.000025)
    assert book.each(cost.DDB_WRITE) == pytest.approx(0.625 / 1_000_000)


def test_a_price_without_a_source_is_refused():
    data = json.loads(Path(PRICES_PATH).read_text())
    del data["prices"][cost.SNS_PUBLISH]["source"]

    with pytest.raises(ValueError, match="source"):
        cost.parse_prices(data)


def test_a_missing_price_is_refused():
    data = json.loads(Path(PRICES_PATH).read_text())
    del data["prices"][cost.APIGW_REQUEST]

    with pytest.raises(ValueError, match="lacks"):
        cost.parse_prices(data)
