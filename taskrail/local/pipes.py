"""The local EventBridge Pipes: poll the table's stream and deliver records as the real Pipe does.

Each pipe of the template is read from its ``AWS::Pipes::Pipe`` definition: the source stream, the event
filter, batch size, input template, target (a state machine, started FIRE_AND_FORGET without choosing the
execution name, or a Lambda function invoked synchronously) and the dead-letter queue for records that
could not be delivered after ``MaximumRetryAttempts``. Delivery is at least once, as on AWS.

The matching records of one read of a shard go to the target in batches of up to ``BatchSize``, in stream order,
one batch at a time. A Lambda target may answer a partial batch failure ("Amazon EventBridge Pipes batching and
concurrency", Partial batch failure: ``{"batchItemFailures": [{"itemIdentifier": <eventID>}]}``, no pipe setting
needed): the batch is retried from the earliest record it names, the records before it count as delivered. An
identifier that is empty, missing or not a record of the batch fails the whole batch ("Reporting batch item
failures" in "Amazon DynamoDB stream as a source").
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from taskrail.item_size import item_size_bytes
from taskrail.local.services.dynamodbstreams import add_stream_listener, remove_stream_listener

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

log = logging.getLogger("taskrail.local.pipes")
TEMPLATE_PATH = re.compile(r"<(\$[^>]*)>")
POLL_INTERVAL = 0.05
STATE_CHECK_INTERVAL = 0.2
#: An idle poller backs off, doubling from POLL_INTERVAL to this; a stream write wakes it at once (moto in this
#: process: taskrail/local/services/dynamodbstreams.py), so the back-off only bounds what a missed wake costs.
IDLE_POLL_MAX = 10.0


class Clock:
    """How a poller waits: on its wake-up event, at most ``seconds`` (True when woken). Tests pass a fake."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)


def next_idle_delay(delay: float) -> float:
    """The wait after one more empty poll."""
    return min(max(delay, POLL_INTERVAL) * 2, IDLE_POLL_MAX)


@dataclass
class PipeSpec:
    """An ``AWS::Pipes::Pipe`` reading a DynamoDB stream: its filter, batch, target, input template and DLQ."""

    logical_id: str
    name: str
    source_stream_arn: str
    filters: list[dict[str, Any]]
    target_arn: str
    target_kind: str  # "stepfunctions" | "lambda"
    input_template: str | None
    batch_size: int
    dead_letter_queue_arn: str | None
    maximum_retry_attempts: int

    @classmethod
    def from_template(
        cls, name: str, logical_id: str, resource: dict[str, Any], resolve: Callable[[Any], Any]
    ) -> PipeSpec:
        """The pipe as the template defines it, its ARNs resolved by ``resolve``; ``name``: its construct name."""
        props = resolve(resource["Properties"])
        source = props.get("SourceParameters", {})
        stream = source.get("DynamoDBStreamParameters", {})
        target = props.get("TargetParameters", {})
        return cls(
            logical_id=logical_id,
            name=name,
            source_stream_arn=props["Source"],
            filters=[pipe_filter(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])],
            target_arn=props["Target"],
            target_kind="stepfunctions" if ":states:" in props["Target"] else "lambda",
            input_template=target.get("InputTemplate"),
            batch_size=int(stream.get("BatchSize", 1)),
            dead_letter_queue_arn=stream.get("DeadLetterConfig", {}).get("Arn"),
            maximum_retry_attempts=int(stream.get("MaximumRetryAttempts", 3)),
        )

    @classmethod
    def from_description(cls, name: str, logical_id: str, described: dict[str, Any]) -> PipeSpec:
        """The pipe as ``DescribePipe`` shows it (its fields are the template's, resolved): what the runner runs."""
        return cls.from_template(name, logical_id, {"Properties": described}, lambda value: value)


OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard", "numeric", "anything-but", "exists"})


def pipe_filter(pattern: str) -> dict[str, Any]:
    """A pipe's filter ``Pattern``, refused (``ValueError``, as CreatePipe refuses it) where Pipes cannot evaluate it.

    The "Pipe support" column of "Comparison operators for use in event patterns" (docs.aws.amazon.com/eventbridge/
    latest/userguide/eb-create-pattern-operators.html): anything-but with ``prefix``, ``suffix``,
    ``equals-ignore-case`` or ``wildcard`` is event-bus only. ``$or`` and ``cidr`` are not emulated locally.
    """
    parsed = json.loads(pattern)
    if not isinstance(parsed, dict):
        raise ValueError(f"a pipe filter pattern is a JSON object: {pattern!r}")
    _check_rules(parsed, pattern)
    return parsed


def _check_rules(node: dict[str, Any], pattern: str) -> None:
    for key, rule in node.items():
        if isinstance(rule, dict):
            _check_rules(rule, pattern)
            continue
        if not isinstance(rule, list):
            raise ValueError(f"pipe filter {pattern!r}: {key!r} must be an object or an array of matchers")
        for matcher in rule:
            if not isinstance(matcher, dict):
                continue
            operator = next(iter(matcher), None)
            if len(matcher) != 1 or operator not in OPERATORS:
                raise ValueError(f"pipe filter {pattern!r}: unsupported matcher {matcher!r}")
            if operator == "anything-but" and isinstance(matcher[operator], dict):
                raise ValueError(f"pipe filter {pattern!r}: anything-but {matcher[operator]!r} is bus-only")


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge event-pattern matching, as Pipes filters evaluate it.

    The rules of "Content filtering in Amazon EventBridge event patterns" (docs.aws.amazon.com/eventbridge/latest/
    userguide/eb-create-pattern-operators.html): a pattern's leaves are lists of matchers, any of which may match;
    an array in the event matches when one of its elements does; a field missing from the event matches only
    ``{"exists": false}``; ``prefix``/``suffix``/``equals-ignore-case``/``wildcard`` apply to strings only and
    ``numeric`` to JSON numbers only (a DynamoDB ``{"N": "5"}`` is a string); ``anything-but`` matches a present
    value that is none of its values (or does not have its prefix/suffix).
    """
    if not (isinstance(pattern, dict) and isinstance(event, dict)):
        return False
    for key, rule in pattern.items():
        if key not in event:
            if not (isinstance(rule, list) and any(_is_exists(m, present=False) for m in rule)):
                return False
            continue
        if not _rule(rule, event[key]):
            return False
    return True


def _rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        return matches(rule, value)
    values = value if isinstance(value, list) else [value]
    return isinstance(rule, list) and any(_matcher(m, v) for m in rule for v in values)


def _is_exists(matcher: Any, *, present: bool) -> bool:
    return isinstance(matcher, dict) and matcher.get("exists") is present


def _same(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _matcher(matcher: Any, value: Any) -> bool:  # noqa: PLR0911 - one branch per operator
    if not isinstance(matcher, dict):
        return _same(matcher, value)
    ((operator, argument),) = matcher.items() if len(matcher) == 1 else ((None, None),)
    if operator == "exists":
        return argument is True  # the field is present (a missing one is handled by the caller)
    if operator == "prefix":
        return _affix(argument, value, str.startswith)
    if operator == "suffix":
        return _affix(argument, value, str.endswith)
    if operator == "equals-ignore-case":
        return isinstance(value, str) and isinstance(argument, str) and value.lower() == argument.lower()
    if operator == "wildcard":
        return isinstance(value, str) and isinstance(argument, str) and _wildcard(argument).fullmatch(value) is not None
    if operator == "numeric":
        return _numeric(argument, value)
    if operator == "anything-but":
        if isinstance(argument, dict):
            return not _matcher(argument, value) and isinstance(value, str)
        excluded = argument if isinstance(argument, list) else [argument]
        return not any(_same(e, value) for e in excluded)
    return False


def _affix(argument: Any, value: Any, test: Callable[[str, str], bool]) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(argument, dict) and isinstance(argument.get("equals-ignore-case"), str):
        return test(value.lower(), argument["equals-ignore-case"].lower())
    return isinstance(argument, str) and test(value, argument)


def _wildcard(argument: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in argument.split("*")), re.DOTALL)


NUMERIC = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(argument: Any, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not isinstance(argument, list):
        return False
    pairs = list(zip(argument[::2], argument[1::2], strict=False))
    return bool(pairs) and all(op in NUMERIC and NUMERIC[op](value, bound) for op, bound in pairs)


def _path(data: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            data = data[part]
    return data


def render_input_template(template: str | None, record: dict[str, Any]) -> Any:
    """Pipes input transformation: ``<$.json.path>`` replaced by the value at that path."""
    if template is None:
        return record

    def value(match: re.Match[str]) -> str:
        found = _path(record, match.group(1))
        return json.dumps(found)[1:-1] if isinstance(found, str) else json.dumps(found)

    return json.loads(TEMPLATE_PATH.sub(value, template))


def as_delivered(record: dict[str, Any], source_arn: str | None = None) -> dict[str, Any]:
    """A stream record as a Pipe hands it to its filter, input template and target.

    GetRecords' record, plus what the Pipe adds (the Pipes example event, docs.aws.amazon.com/eventbridge/latest/
    userguide/eb-pipes-dynamodb.html): ``eventSourceARN`` (the stream), ``eventSource`` ``aws:dynamodb``, and
    ``ApproximateCreationDateTime`` in epoch seconds (Lambda's example event: ``1693997155.0``). ``SizeBytes`` is
    DynamoDB's item size of Keys + NewImage + OldImage, as in that example (26 / 59 / 38 for its three records);
    moto counts JSON characters instead.
    """
    dynamodb = dict(record.get("dynamodb", {}))
    created = dynamodb.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    images = [dynamodb.get(part) for part in ("Keys", "NewImage", "OldImage")]
    dynamodb["SizeBytes"] = sum(item_size_bytes(image) for image in images if image)
    delivered = {**record, "dynamodb": dynamodb, "eventSource": "aws:dynamodb"}
    if source_arn is not None:
        delivered["eventSourceARN"] = source_arn
    return delivered


class BatchFailed(Exception):
    """The target's answer fails the whole batch (a partial batch failure that names no record of it)."""


def records_to_retry(records: list[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """What a Lambda target's ``answer`` leaves to retry of ``records``: none when it names no failure (no
    ``batchItemFailures``, an empty or null list); else the records from the earliest one it names, in stream order
    (a stream is read in order: a retried record is never overtaken by a later one). Raises :class:`BatchFailed`
    when an identifier is empty, null, under another key, or no record's ``eventID``.
    """
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not failures:
        return []
    event_ids = [record.get("eventID") for record in records]
    positions = []
    for failure in failures if isinstance(failures, list) else [failures]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in event_ids:
            raise BatchFailed(f"batchItemFailures names {identifier!r}, no eventID of the batch")
        positions.append(event_ids.index(identifier))
    return records[min(positions) :]


class PipeRunner:
    """One poller thread per pipe; ``pause()``/``resume()`` simulate an outage of the poller."""

    def __init__(
        self,
        pipes: dict[str, PipeSpec],
        clients: Callable[[str], Any],
        *,
        starting_position: str = "TRIM_HORIZON",
        duplicate: Callable[[], bool] | None = None,
        clients_for: Callable[[PipeSpec], Callable[[str], Any]] | None = None,
        desired_state: Callable[[PipeSpec], str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._pipes = pipes
        self._clock = clock or Clock()
        # One wake-up per pipe: a stream write sets them all, each poller clears its own before it reads.
        self._wakes = {name: threading.Event() for name in pipes}
        #: GetRecords calls per pipe (the back-off test counts them)
        self.polls: dict[str, int] = dict.fromkeys(pipes, 0)
        self._clients = clients
        # Each pipe reads its source, invokes its target and writes its DLQ as the pipe's role (taskrail/local/iam).
        self._clients_for = clients_for
        self._starting_position = starting_position
        # The pipe's DesiredState in the control plane (moto): `aws pipes stop-pipe` stops reading, as on AWS.
        self._desired_state = desired_state
        # Fault injection: asked once per delivered record whether to deliver it again (at least once, as on AWS).
        self._duplicate = duplicate or (lambda: False)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._threads: list[threading.Thread] = []
        self.delivered: dict[str, int] = dict.fromkeys(pipes, 0)
        self.dead_lettered: dict[str, int] = dict.fromkeys(pipes, 0)
        #: the pipes whose control-plane DesiredState the runner last saw as STOPPED (they read nothing meanwhile)
        self.stopped: set[str] = set()

    def start(self) -> PipeRunner:
        add_stream_listener(self.wake)
        for spec in self._pipes.values():
            iterators = self._shard_iterators(spec)
            thread = threading.Thread(target=self._poll, args=(spec, iterators), name=f"pipe-{spec.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        remove_stream_listener(self.wake)
        self._stop.set()
        self._running.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self.wake()

    def wake(self) -> None:
        """Something may have arrived: every poller reads its stream now."""
        for event in self._wakes.values():
            event.set()

    def _as(self, spec: PipeSpec) -> Callable[[str], Any]:
        return self._clients_for(spec) if self._clients_for is not None else self._clients

    def _shard_iterators(self, spec: PipeSpec) -> dict[str, str]:
        streams = self._as(spec)("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=spec.source_stream_arn)["StreamDescription"]["Shards"]
        return {
            shard["ShardId"]: streams.get_shard_iterator(
                StreamArn=spec.source_stream_arn, ShardId=shard["ShardId"], ShardIteratorType=self._starting_position
            )["ShardIterator"]
            for shard in shards
        }

    def _poll(self, spec: PipeSpec, iterators: dict[str, str]) -> None:
        streams = self._as(spec)("dynamodbstreams")
        wake, clock = self._wakes[spec.name], self._clock
        checked, stopped, delay = -STATE_CHECK_INTERVAL, False, POLL_INTERVAL
        while not self._stop.is_set():
            self._running.wait()
            if self._desired_state is not None and clock.monotonic() - checked >= STATE_CHECK_INTERVAL:
                checked, stopped = clock.monotonic(), self._is_stopped(spec)
                (self.stopped.add if stopped else self.stopped.discard)(spec.name)
            if stopped:  # `aws pipes start-pipe` is a control-plane call, not a stream write: checked on a timer
                clock.wait(wake, STATE_CHECK_INTERVAL)
                wake.clear()
                continue
            wake.clear()  # before reading: a record written from here on sets it again
            delivered = self._read(spec, streams, iterators)
            delay = POLL_INTERVAL if delivered else next_idle_delay(delay)
            if delivered or clock.wait(wake, delay):
                delay = POLL_INTERVAL

    def _read(self, spec: PipeSpec, streams: Any, iterators: dict[str, str]) -> bool:
        """One GetRecords per shard, each record matched and delivered; whether any record was read."""
        read = False
        for shard_id, iterator in list(iterators.items()):
            self.polls[spec.name] += 1
            try:
                response = streams.get_records(ShardIterator=iterator, Limit=100)
            except Exception:
                log.exception("pipe %s: reading the stream failed", spec.name)
                continue
            iterators[shard_id] = response.get("NextShardIterator") or iterator
            matched: list[dict[str, Any]] = []
            for raw in response.get("Records", []):
                read = True
                record = as_delivered(raw, spec.source_stream_arn)
                if any(matches(f, record) for f in spec.filters) or not spec.filters:
                    matched.append(record)
            for start in range(0, len(matched), max(spec.batch_size, 1)):
                batch = matched[start : start + max(spec.batch_size, 1)]
                self._deliver(spec, batch)
                if self._duplicate():
                    self._deliver(spec, batch)
        return read

    def _is_stopped(self, spec: PipeSpec) -> bool:
        assert self._desired_state is not None
        try:
            return self._desired_state(spec) == "STOPPED"
        except Exception:
            log.exception("pipe %s: reading its state failed", spec.name)
            return False

    def _deliver(self, spec: PipeSpec, records: list[dict[str, Any]]) -> None:
        """One batch to the target, retried up to MaximumRetryAttempts times (from the earliest record a partial
        batch failure names); what is still undelivered then goes to the DLQ, record by record."""
        pending, last_error = list(records), ""
        for _attempt in range(spec.maximum_retry_attempts + 1):
            try:
                retried = self._invoke_target(spec, pending)
            except Exception as error:
                last_error = f"{type(error).__name__}: {error}"
                log.warning("pipe %s: delivery failed: %s", spec.name, last_error)
            else:
                self.delivered[spec.name] += len(pending) - len(retried)
                if not retried:
                    return
                pending = retried
                last_error = f"partial batch failure: {len(retried)} record(s) from eventID {retried[0].get('eventID')}"
                log.warning("pipe %s: %s", spec.name, last_error)
            if self._stop.wait(POLL_INTERVAL):
                return
        for record in pending:
            self._dead_letter(spec, record, last_error)

    def _invoke_target(self, spec: PipeSpec, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The batch to the target; the records to retry (a Lambda target's partial batch failure), else none."""
        batch = [render_input_template(spec.input_template, record) for record in records]
        if spec.target_kind == "stepfunctions":
            # A pipe cannot name executions; moto needs a name (it would call it "None"), so a fresh one.
            self._as(spec)("stepfunctions").start_execution(
                stateMachineArn=spec.target_arn, name=str(uuid.uuid4()), input=json.dumps(batch)
            )
            return []
        response = self._as(spec)("lambda").invoke(FunctionName=spec.target_arn, Payload=json.dumps(batch).encode())
        payload = response["Payload"].read().decode()
        if response.get("FunctionError"):
            raise RuntimeError(payload)
        return records_to_retry(records, json.loads(payload) if payload.strip() else None)

    def _dead_letter(self, spec: PipeSpec, record: dict[str, Any], reason: str) -> None:
        self.dead_lettered[spec.name] += 1
        if not spec.dead_letter_queue_arn:
            log.error("pipe %s: dropped a record after retries (no DLQ): %s", spec.name, reason)
            return
        sqs = self._as(spec)("sqs")
        # The queue's URL from its ARN, as Pipes addresses its DLQ: a pipe's role needs sqs:SendMessage only ("Event
        # source permissions for Amazon EventBridge Pipes"), so the poller must not ask GetQueueUrl as that role.
        _, _, _, _, account, queue_name = spec.dead_letter_queue_arn.split(":", 5)
        url = f"{sqs.meta.endpoint_url}/{account}/{queue_name}"
        sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({"pipe": spec.name, "reason": reason, "record": record}, default=str)
        )


class PipesEmulator:
    """The stack's EventBridge Pipes: a :class:`PipeRunner` over the template's pipes (a fresh one after a reset)."""

    name: ClassVar[str] = "pipes"
    restart_on_reset: ClassVar[bool] = True

    def __init__(self) -> None:
        self.runner: PipeRunner | None = None

    def start(self, context: EmulatorContext) -> None:
        """Each pipe runs as moto's control plane describes it (created there from the template by
        ``control_plane.pipe``), and pauses while its DesiredState there is STOPPED."""
        iam = context.iam
        pipes_api = context.clients("pipes")
        names = {spec.name: str(context.resolve({"Ref": spec.logical_id})) for spec in context.resources.pipes.values()}
        specs = {
            name: PipeSpec.from_description(name, spec.logical_id, pipes_api.describe_pipe(Name=names[name]))
            for name, spec in context.resources.pipes.items()
        }
        self.runner = PipeRunner(
            specs,
            context.clients,
            duplicate=context.faults.duplicate,
            clients_for=(lambda spec: iam.clients_as(iam.roles.pipes[spec.name])) if iam is not None else None,
            desired_state=lambda spec: str(pipes_api.describe_pipe(Name=names[spec.name])["DesiredState"]),
        ).start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
