"""The in-process platform: the template's resources in moto (``mock_aws``, in this process), Step Functions executing
``asl/task_lifecycle.asl.json`` with moto's interpreter, and the template's Lambda handlers called directly.

One platform for the workflow tests (``tests/workflows``), the cost model (``taskrail cost``), the benchmarks
(``bench``) and the recorded history fixtures (``tests/record_histories.py``). :func:`in_process_platform`

* installs the AWS-semantics patches and the Lambda invoker on entry and uninstalls them on exit;
* names every execution it starts one way (:func:`start_name`, from the task contract);
* waits for the executions still running before it leaves ``mock_aws`` (stopping stragglers), because an
  execution left running would send its next calls out of the mock.

The local stack runs each function as its own process through awslambdaric (see ``functions.py``); the runner
here (:class:`InProcessFunctions`) is the fast path. Both report a handler exception the way Lambda does:
``errorType`` is the exception's class name, which is what the workflow's Retry and Catch match.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
from moto import mock_aws

from task_common.contract import PENDING_SHARD_ATTRIBUTE, execution_name, pending_shard, result_key
from taskrail.history import History
from taskrail.history import read as read_history
from taskrail.local.functions import FunctionSpec
from taskrail.local.provision import LocalResources, provision
from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.services.lambda_ import InvokeOutcome, lambda_invoker
from taskrail.local.services.registry import install_aws_semantics, uninstall_aws_semantics
from taskrail.local.services.server import LOCAL_MOTO_CONFIG
from taskrail.local.services.stepfunctions import SleepLog, record_sleeps, time_scale
from taskrail.local.services.stepfunctions_express import inspecting

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"


@dataclass
class LambdaContext:
    """The attributes of the managed runtime's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_ms: float
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:

        return max(0, int(self.deadline_ms - time.time() * 1000))


class InProcessFunctions:
    """An invoker for :func:`taskrail.local.services.lambda_.lambda_invoker` that calls handlers directly."""

    def __init__(self, functions: dict[str, FunctionSpec], *, extra_env: dict[str, str] | None = None) -> None:
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        environment: dict[str, str] = {}
        for spec in functions.values():
            environment.update(spec.environment)
        environment.update({"AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true"})
        environment.update(extra_env or {})
        # The handlers read os.environ (this process's, shared by every function): restored by restore_environment,
        # so that one template's settings (an EXPRESS lifecycle's STOP_EXECUTIONS, say) never reach the next
        # platform or test of the process.
        self._saved_environment = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        if str(LAMBDAS_DIR) not in sys.path:
            sys.path.insert(0, str(LAMBDAS_DIR))
        # Handlers read their configuration at import (cold start): start every runner cold.
        for spec in functions.values():
            sys.modules.pop(spec.handler.rsplit(".", 1)[0], None)

    def restore_environment(self) -> None:
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        with self._lock:
            if spec.handler not in self._handlers:
                module_name, function_name = spec.handler.rsplit(".", 1)
                self._handlers[spec.handler] = getattr(importlib.import_module(module_name), function_name)
            return self._handlers[spec.handler]

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:

        spec = self._by_name[
            function_name.rsplit(":", maxsplit=1)[-1] if function_name.startswith("arn:") else function_name
        ]
        event = json.loads(payload or b"null")
        self.invocations.append((spec.name, event))
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}",
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            deadline_ms=time.time() * 1000 + spec.timeout_seconds * 1000,
        )
        try:
            result = self._handler(spec)(event, context)
        except Exception as error:
            return InvokeOutcome.unhandled(type(error).__name__, str(error), traceback.format_exception(error))
        return InvokeOutcome.success(result)


def api_task_item(
    task_id: str, task_type: str, params: Any, user: str = "alice", created_at_ms: int | None = None
) -> dict[str, Any]:
    """A Tasks item as the POST /tasks mapping template writes it (for harnesses that skip the API); its pending
    index shard from the task id (the template takes it from the request id)."""
    created = created_at_ms if created_at_ms is not None else int(time.time() * 1000)
    return {
        "taskId": {"S": task_id},
        "userId": {"S": user},
        "type": {"S": task_type},
        "params": {"S": json.dumps(params)},
        "status": {"S": "QUEUED"},
        "progress": {"N": "0"},
        "attempt": {"N": "0"},
        PENDING_SHARD_ATTRIBUTE: {"S": pending_shard(task_id)},
        "createdAt": {"N": str(created)},
    }


# --------------------------------------------------------------------------------------------------
# The platform
# --------------------------------------------------------------------------------------------------

STATE_MACHINE: Final = "TaskLifecycleStateMachine"
TASKS_TABLE: Final = "TasksTable"
RESULTS_BUCKET: Final = "ResultsBucket"
#: ``{taskId}-p{n}``: the n-th start of a task on this platform. A pipe cannot name executions (on AWS and in
#: the local stack they get a fresh UUID); the platform's names are deterministic, so that a history recorded
#: here reads the same every time.
START_SUFFIX: Final = "p"
EXECUTION_STATUSES_RUNNING: Final = frozenset({"RUNNING"})
POLL_SECONDS: Final = 0.02


Invoker = Callable[[str, bytes, str | None], Any]


def start_name(task_id: str, start: int) -> str:
    return execution_name(task_id, start, START_SUFFIX)


@dataclass
class Platform:
    """One provisioned, in-process platform (no HTTP, no subprocesses): Given/When/Then helpers over it.

    The workflow's Lambda invokes reach :attr:`invoker` if one is set (:meth:`invoking`), else the real handlers
    (:attr:`functions`).
    """

    resources: LocalResources
    template: Mapping[str, Any]
    functions: InProcessFunctions
    sleeps: SleepLog
    invoker: Invoker | None = None
    _starts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: dict[str, Any] = field(default_factory=dict)

    def invoke(self, function_name: str, payload: bytes, qualifier: str | None) -> Any:
        """The platform's Lambda invoker (installed for the platform's life): :attr:`invoker`, or the handlers."""
        return (self.invoker or self.functions)(function_name, payload, qualifier)

    @contextmanager
    def invoking(self, invoker: Invoker) -> Iterator[None]:
        """Route the workflow's Lambda invokes to ``invoker`` while the block runs."""
        previous, self.invoker = self.invoker, invoker
        try:
            yield
        finally:
            self.invoker = previous

    # -- resources ---------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A client of the mocked service (one per service: boto3 clients are thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=REGION)
            return self._clients[service]

    @property
    def state_machine_arn(self) -> str:
        return self.resources.state_machines[STATE_MACHINE]

    @property
    def tasks_table(self) -> str:
        return self.resources.ref(TASKS_TABLE)

    @property
    def results_bucket(self) -> str:
        return self.resources.ref(RESULTS_BUCKET)

    # -- given -------------------------------------------------------------------------------------------

    def task_item(self, task_id: str, task_type: str, params: Any, user: str = "alice") -> dict[str, Any]:
        """The item exactly as the POST /tasks mapping template writes it."""
        return api_task_item(task_id, task_type, params, user)

    def store_task(
        self, task_id: str, task_type: str, params: Any, user: str = "alice", *, only_new: bool = False
    ) -> None:
        """Write the task as the API does (``only_new``: with the API's ``attribute_not_exists`` condition)."""
        condition = {"ConditionExpression": "attribute_not_exists(taskId)"} if only_new else {}
        self.client("dynamodb").put_item(
            TableName=self.tasks_table, Item=self.task_item(task_id, task_type, params, user), **condition
        )

    # -- when --------------------------------------------------------------------------------------------

    def start(self, task_id: str, name: str | None = None, state_machine_arn: str | None = None) -> str:
        """As the Pipe does: the task id in a batch of one, under the name :func:`start_name` gives."""
        if name is None:
            with self._lock:
                self._starts[task_id] += 1
                name = start_name(task_id, self._starts[task_id])
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn or self.state_machine_arn, name=name, input=json.dumps([task_id])
        )
        return str(response["executionArn"])

    def execution_named(self, name: str, state_machine_arn: str | None = None) -> str:
        """The ARN of the execution of this name (an Express ARN ends in a UUID: it is not derived from the name)."""
        sfn, machine = self.client("stepfunctions"), state_machine_arn or self.state_machine_arn
        with inspecting():
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
            found = [str(e["executionArn"]) for page in pages for e in page["executions"] if e["name"] == name]
        if not found:
            raise LookupError(f"no execution {name} of {machine}")
        return found[0]

    def run(self, task_id: str, task_type: str, params: Any) -> dict[str, Any]:
        self.store_task(task_id, task_type, params)
        return self.wait(self.start(task_id))

    def wait(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """Poll DescribeExecution until the execution is no longer RUNNING (a hang guard of ``timeout`` s)."""
        sfn, deadline = self.client("stepfunctions"), time.monotonic() + timeout
        while True:
            with inspecting():  # an EXPRESS execution too: the harness looks at the emulator's own record
                execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] not in EXECUTION_STATUSES_RUNNING:
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution did not finish within {timeout} s: {execution_arn}")
            time.sleep(POLL_SECONDS)

    def running(self) -> list[str]:
        """Every execution still running, of every state machine of the template."""
        sfn, arns = self.client("stepfunctions"), []
        for machine in self.resources.state_machines.values():
            with inspecting():
                pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING")
                arns += [str(e["executionArn"]) for page in pages for e in page["executions"]]
        return arns

    def drain_executions(self, timeout: float = 60) -> list[str]:
        """Wait until no execution runs; stop those still running after ``timeout`` s. Returns the stopped ones."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        stragglers = self.running()
        sfn = self.client("stepfunctions")
        for arn in stragglers:
            with inspecting():
                sfn.stop_execution(executionArn=arn, error="Drained", cause="the in-process platform is closing")
        deadline = time.monotonic() + 30
        while stragglers and self.running() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return stragglers

    # -- then --------------------------------------------------------------------------------------------

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn, events, token = self.client("stepfunctions"), [], None
        while True:
            with inspecting():
                page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **_token(token))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def read_history(self, execution_arn: str) -> History:
        return read_history(self.history(execution_arn))

    def states_entered(self, execution_arn: str) -> list[str]:
        return self.read_history(execution_arn).states_entered

    def task(self, task_id: str) -> dict[str, Any]:
        """The Tasks item, each attribute as its plain value."""
        item = self.client("dynamodb").get_item(TableName=self.tasks_table, Key={"taskId": {"S": task_id}})
        return {k: next(iter(v.values())) for k, v in item["Item"].items()}

    def drain_queue(self, queue_construct: str) -> list[dict[str, Any]]:
        """Up to 10 messages of the queue, their bodies parsed."""
        sqs, url = self.client("sqs"), self.resources.ref(queue_construct)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def result_versions(self, task_id: str) -> list[dict[str, Any]]:
        listing = self.client("s3").list_object_versions(Bucket=self.results_bucket, Prefix=result_key(task_id))
        return list(listing.get("Versions", []))

    def result(self, task_id: str) -> dict[str, Any]:
        body = self.client("s3").get_object(Bucket=self.results_bucket, Key=result_key(task_id))
        result: dict[str, Any] = json.loads(body["Body"].read())
        return result


@contextmanager
def quiet() -> Iterator[None]:
    """Handlers' JSON logs and metrics, moto's error logs and library warnings stay out of the caller's output."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        moto_logger.setLevel(level)


def _token(token: str | None) -> dict[str, str]:
    return {"nextToken": token} if token else {}


@contextmanager
def in_process_platform(
    template: Mapping[str, Any] | None = None,
    *,
    cdk_out: str | os.PathLike[str] | None = None,
    stack_name: str | None = None,
    drain_timeout: float = 60,
    platform_class: type[Platform] = Platform,
) -> Iterator[Platform]:
    """moto (``mock_aws``, Step Functions executing), the template provisioned, the real handlers in-process,
    Retry and Wait not slept (:attr:`Platform.sleeps` records what the workflow asked for).

    ``template`` defaults to the synthesized one (``infra.synth``, which synthesizes when the sources changed);
    ``cdk_out`` is the folder its assets are in (default: ``infra.synth.CDK_OUT``).
    """
    if template is None or cdk_out is None or stack_name is None:
        from infra.synth import CDK_OUT, STACK_NAME, load_template  # synthesizing needs CDK: only when asked

        template = template if template is not None else load_template()
        cdk_out = cdk_out if cdk_out is not None else CDK_OUT
        stack_name = stack_name or STACK_NAME
    template = dict(template)
    with mock_aws(config=LOCAL_MOTO_CONFIG), time_scale(0), record_sleeps() as sleeps:
        resources, _ = provision(
            template, lambda s: boto3.client(s, region_name=REGION), stack_name=stack_name, cdk_out=str(cdk_out)
        )
        functions = InProcessFunctions(resources.functions)
        platform = platform_class(resources, template, functions, sleeps)
        install_aws_semantics()
        try:
            with lambda_invoker(platform.invoke):
                try:
                    yield platform
                finally:
                    platform.drain_executions(drain_timeout)
        finally:
            uninstall_aws_semantics()
            functions.restore_environment()
