"""The local EventBridge Pipes: poll the table's stream and deliver records as the real Pipe does.

Each pipe of the template is read from its ``AWS::Pipes::Pipe`` definition: the source stream, the event
filter, batch size, input template, target (a state machine, started FIRE_AND_FORGET without choosing the
execution name, or a Lambda function invoked synchronously) and the dead-letter queue for records that
could not be delivered after ``MaximumRetryAttempts``. Delivery is at least once, as on AWS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

log = logging.getLogger("taskrail.local.pipes")
TEMPLATE_PATH = re.compile(r"<(\$[^>]*)>")
POLL_INTERVAL = 0.05


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
            filters=[json.loads(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])],
            target_arn=props["Target"],
            target_kind="stepfunctions" if ":states:" in props["Target"] else "lambda",
            input_template=target.get("InputTemplate"),
            batch_size=int(stream.get("BatchSize", 1)),
            dead_letter_queue_arn=stream.get("DeadLetterConfig", {}).get("Arn"),
            maximum_retry_attempts=int(stream.get("MaximumRetryAttempts", 3)),
        )


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge pattern matching for the forms the template uses: nested objects and value lists."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return event in pattern
    return bool(pattern == event)


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


def as_delivered(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a Pipe hands it on: JSON, with ApproximateCreationDateTime in epoch seconds."""
    dynamodb = dict(record.get("dynamodb", {}))
    created = dynamodb.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSource": "aws:dynamodb"}


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
    ) -> None:
        self._pipes = pipes
        self._clients = clients
        # Each pipe reads its source, invokes its target and writes its DLQ as the pipe's role (taskrail/local/iam).
        self._clients_for = clients_for
        self._starting_position = starting_position
        # Fault injection: asked once per delivered record whether to deliver it again (at least once, as on AWS).
        self._duplicate = duplicate or (lambda: False)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._threads: list[threading.Thread] = []
        self.delivered: dict[str, int] = dict.fromkeys(pipes, 0)
        self.dead_lettered: dict[str, int] = dict.fromkeys(pipes, 0)

    def start(self) -> PipeRunner:
        for spec in self._pipes.values():
            iterators = self._shard_iterators(spec)
            thread = threading.Thread(target=self._poll, args=(spec, iterators), name=f"pipe-{spec.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

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
        while not self._stop.is_set():
            self._running.wait()
            for shard_id, iterator in list(iterators.items()):
                try:
                    response = streams.get_records(ShardIterator=iterator, Limit=100)
                except Exception:
                    log.exception("pipe %s: reading the stream failed", spec.name)
                    continue
                iterators[shard_id] = response.get("NextShardIterator") or iterator
                for raw in response.get("Records", []):
                    record = as_delivered(raw)
                    if any(matches(f, record) for f in spec.filters) or not spec.filters:
                        self._deliver(spec, record)
                        if self._duplicate():
                            self._deliver(spec, record)
            self._stop.wait(POLL_INTERVAL)

    def _deliver(self, spec: PipeSpec, record: dict[str, Any]) -> None:
        last_error = ""
        for _attempt in range(spec.maximum_retry_attempts + 1):
            try:
                self._invoke_target(spec, record)
                self.delivered[spec.name] += 1
                return
            except Exception as error:
                last_error = f"{type(error).__name__}: {error}"
                log.warning("pipe %s: delivery failed: %s", spec.name, last_error)
                if self._stop.wait(POLL_INTERVAL):
                    return
        self._dead_letter(spec, record, last_error)

    def _invoke_target(self, spec: PipeSpec, record: dict[str, Any]) -> None:
        batch = [render_input_template(spec.input_template, record)]
        if spec.target_kind == "stepfunctions":
            # A pipe cannot name executions; moto needs a name (it would call it "None"), so a fresh one.
            self._as(spec)("stepfunctions").start_execution(
                stateMachineArn=spec.target_arn, name=str(uuid.uuid4()), input=json.dumps(batch)
            )
            return
        response = self._as(spec)("lambda").invoke(FunctionName=spec.target_arn, Payload=json.dumps(batch).encode())
        if response.get("FunctionError"):
            raise RuntimeError(response["Payload"].read().decode())

    def _dead_letter(self, spec: PipeSpec, record: dict[str, Any], reason: str) -> None:
        self.dead_lettered[spec.name] += 1
        if not spec.dead_letter_queue_arn:
            log.error("pipe %s: dropped a record after retries (no DLQ): %s", spec.name, reason)
            return
        sqs = self._as(spec)("sqs")
        queue_name = spec.dead_letter_queue_arn.rsplit(":", 1)[-1]
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
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
        iam = context.iam
        self.runner = PipeRunner(
            context.resources.pipes,
            context.clients,
            duplicate=context.faults.duplicate,
            clients_for=(lambda spec: iam.clients_as(iam.roles.pipes[spec.name])) if iam is not None else None,
        ).start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
