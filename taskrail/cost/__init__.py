"""The cost model: billable state transitions and dollars per million tasks on AWS.

Nothing here is hand-counted. :func:`cost_report`

1. reads the generated definition (``asl/task_lifecycle.asl.json``) and walks its happy path statically;
2. runs the paths a task can take -- happy (``text.stats``), retried (``diagnostic.flaky`` failing twice)
   and failed (``diagnostic.poison``) -- through moto's Step Functions interpreter in this process, with the real
   handlers and the resources provisioned from the synthesized template (as ``tests/workflows`` does), and
   records, per path: the execution history (``StateEntered`` events plus retried attempts = billable
   transitions), every AWS request the workflow and its handlers make (a botocore event hook), and the duration
   of every Lambda invocation;
3. prices that profile with ``docs/prices.json`` (every price cites its AWS pricing page) for a STANDARD and an
   EXPRESS workflow, memory sizes and architectures from the template, and compares it with the same lifecycle
   built the naive way: API Gateway -> a Lambda that stores the task and starts the execution -> one Lambda per
   step.

What is measured and what is assumed is listed in :class:`Assumptions` and ``docs/COST.md``.

``taskrail cost`` is ``render_cost_report(cost_report())``; ``as_json(report)`` is its ``--json`` form.

The package, by concern (the arithmetic imports neither moto nor CDK; only :mod:`~taskrail.cost.measure` runs the
in-process platform, and it is loaded on first use of its names):

* :mod:`~taskrail.cost.prices` -- ``docs/prices.json``;
* :mod:`~taskrail.cost.definition` -- the definition read statically, and the three paths;
* :mod:`~taskrail.cost.units` -- DynamoDB request units;
* :mod:`~taskrail.cost.model` -- profiles and their prices per design;
* :mod:`~taskrail.cost.measure` -- the paths run on ``taskrail.local.inprocess``, the botocore request recorder;
* :mod:`~taskrail.cost.render` -- tables and ``--json``;
* execution histories are read by :mod:`taskrail.history` (``state_visits``, ``billable_transitions``).
"""

from __future__ import annotations

from typing import Any

from taskrail.cost.definition import (  # noqa: F401
    ASL_PATH,
    BASELINE_PATH,
    NOTIFICATION_INTEGRATIONS,
    PATHS,
    ROOT,
    TERMINAL_TYPES,
    PathSpec,
    catch_target,
    definition_transitions,
    expected_retry_wait_seconds,
    follow_path,
    happy_path,
    integration,
    load_definition,
    matching_retrier,
    relative,
)
from taskrail.cost.model import (  # noqa: F401
    DESIGNS,
    EXPRESS,
    HAPPY_PATH_TARGET,
    LINE_ITEMS,
    NAIVE,
    NAIVE_PER_STATE,
    PER_TASKS,
    STANDARD,
    TASKRAIL,
    WORKFLOW_TYPES,
    Assumptions,
    CostReport,
    DesignCost,
    FunctionInfo,
    LambdaUse,
    PathProfile,
    Target,
    compute_report,
    express_duration_ms,
    naive_profile,
    per_million,
    price_path,
    round_up,
)
from taskrail.cost.prices import (  # noqa: F401
    APIGW_REQUEST,
    DDB_READ,
    DDB_READ_KB,
    DDB_WRITE,
    DDB_WRITE_KB,
    EVENTS_PUT,
    EXPRESS_DURATION_STEP,
    EXPRESS_MEMORY_STEP,
    LAMBDA_DURATION_STEP,
    LAMBDA_GB_SECOND,
    LAMBDA_REQUEST,
    LOGS_GB,
    PIPES_REQUEST,
    PRICES_PATH,
    REQUIRED_PRICES,
    REQUIRED_RULES,
    S3_GET,
    S3_PUT,
    SFN_EXPRESS_GB_SECOND,
    SFN_EXPRESS_REQUEST,
    SFN_TRANSITION,
    SNS_PUBLISH,
    SQS_REQUEST,
    BillingRule,
    Price,
    PriceBook,
    load_prices,
    parse_prices,
)
from taskrail.cost.render import (  # noqa: F401
    as_json,
    render_cost_report,
)
from taskrail.cost.units import (  # noqa: F401
    IndexInfo,
    ItemImages,
    TableInfo,
    item_size_bytes,
    read_units,
    tables_from_template,
    write_units,
)
from taskrail.history import Visit as StateVisit  # noqa: F401
from taskrail.history import billable_transitions, retries, state_visits  # noqa: F401

#: Names of :mod:`taskrail.cost.measure`, which imports moto: loaded when first used.
_MEASURE = frozenset(
    {
        "Invocation",
        "TimedInvoker",
        "WAIT_SECONDS",
        "cost_report",
        "function_infos",
        "measure_paths",
        "workflow_log_bytes",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MEASURE:
        from taskrail.cost import measure

        return getattr(measure, name)
    raise AttributeError(f"module 'taskrail.cost' has no attribute {name!r}")
