"""The deployed design as the capacity model needs it, read from the synthesized template and ``asl/``.

Nothing here is hand-copied: the pipes' batch and parallelization settings, the stage throttle, the functions,
the Tasks table's indexes and the intake's literal attributes come from the template; the states each path enters,
their Lambda invocations and their writes to the task item come from the definitions (walked with the cost model's
:mod:`taskrail.cost.definition`). Writes made inside Lambda handlers (progress updates, the outbox's mark) are not in
either and are not counted.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from taskrail.cost.definition import (
    ASL_PATH,
    PATHS,
    ROOT,
    PathSpec,
    catch_target,
    follow_path,
    integration,
    load_definition,
)

RECORDER_ASL_PATH: Final = ASL_PATH.parent / "failure_recorder.asl.json"
# The lifecycle's EXPRESS definition, where asl/ has one (`cdk deploy -c lifecycleType=EXPRESS`).
EXPRESS_ASL_PATH: Final = ASL_PATH.with_name("task_lifecycle.express.asl.json")
STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"
# The four paths of the issue: the cost model's happy, failed and replayed, and a rejection at validation.
REJECTED = PathSpec(
    "rejected",
    "diagnostic.invalid",
    {},
    "REJECTED",
    "the parameters fail validation: MarkRejected",
    failing_state="ValidateParameters",
    error="ValidationFailed",
)
PATH_NAMES: Final = ("happy", "rejected", "failed", "replayed")
COMPUTED: Final = None  # an attribute value computed at run time (a task id, a time): one per task


class TemplateMissing(FileNotFoundError):
    pass


# --------------------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------------------


def default_template_path() -> Path:
    out = Path(os.environ.get("TASKRAIL_CDK_OUT") or ROOT / "cdk.out")
    return out / f"{os.environ.get('TASKRAIL_STACK_NAME', 'taskrail')}.template.json"


def synthesized_template(path: Path | None = None, *, synth: bool = True) -> Path:
    """The template, synthesized first when its sources changed (``infra.synth``, in a child process: this process
    never loads CDK). With ``synth=False`` (or an explicit ``path``) the file is read as it is."""
    if path is not None:
        if not path.exists():
            raise TemplateMissing(f"no template at {path}")
        return path
    if synth:
        code = "from infra.synth import synth; print(synth())"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip().splitlines()[-1])
        raise TemplateMissing(f"synthesizing failed: {done.stderr.strip()[-500:]}")
    found = default_template_path()
    if not found.exists():
        raise TemplateMissing(f"no template at {found}: run `make synth`")
    return found


def _text(value: Any) -> str:
    """A template string, with ``Fn::Join`` / ``Fn::Sub`` flattened (tokens dropped)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(_text(p) for p in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            return _text(sub[0] if isinstance(sub, list) else sub)
    return ""


def _ref(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names ('' otherwise)."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return ""


def _construct_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    """``ProcessTaskFunction`` for ``taskrail/Functions/ProcessTaskFunction/Resource``."""
    path = str(resource.get("Metadata", {}).get("aws:cdk:path", ""))
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[-1] == "Resource":
        return parts[-2]
    return parts[-1] if len(parts) >= 2 else logical_id


@dataclass(frozen=True)
class Pipe:
    logical_id: str
    name: str
    source_table: str  # logical id of the table whose stream it reads ('' for other sources)
    target_kind: str  # "stepfunctions" or "lambda"
    target: str  # the target's logical id
    batch_size: int
    parallelization_factor: int
    filters: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    memory_mb: int
    timeout_s: int
    reserved: int | None


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str
    projection: str  # ALL, KEYS_ONLY, INCLUDE
    attributes: frozenset[str]  # INCLUDE's non-key attributes

    def projects(self, attribute: str) -> bool:
        if self.projection == "ALL":
            return True
        return attribute in (self.hash_key, self.range_key) or attribute in self.attributes


@dataclass(frozen=True)
class Design:
    template_path: str
    lifecycle: str  # logical id
    lifecycle_type: str
    recorder: str | None  # a state machine a rule starts for each failed lifecycle execution
    tasks_table: str
    key: str  # the table's partition key
    indexes: tuple[Index, ...]
    pipes: tuple[Pipe, ...]
    stream_readers: int
    functions: Mapping[str, Function]
    stage_rate: float | None
    stage_burst: float | None
    stage: str  # logical id of the stage whose throttle applies to POST /tasks
    intake: Mapping[str, str | None]  # attribute -> literal value (None: computed per request)
    warm_writes: float | None = None  # the table's WarmThroughput.WriteUnitsPerSecond, when set
    max_writes: float | None = None  # OnDemandThroughput.MaxWriteRequestUnits, when set
    websocket_apis: int = 0  # WebSocket APIs (live progress): their quotas are listed (taskrail/capacity/live.py)

    @property
    def start_pipe(self) -> Pipe:
        return next(p for p in self.pipes if p.target_kind == "stepfunctions" and p.target == self.lifecycle)

    @property
    def outbox_pipe(self) -> Pipe | None:
        return next((p for p in self.pipes if p.target_kind == "lambda" and p.source_table == self.tasks_table), None)


def _stage_throttle(resources: Mapping[str, Any]) -> tuple[str, float | None, float | None]:
    """The throttle that applies to POST /tasks: a method setting for it, else the stage-wide ``/*`` one."""
    best: tuple[int, str, float | None, float | None] = (-1, "", None, None)
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ApiGateway::Stage":
            continue
        for setting in resource.get("Properties", {}).get("MethodSettings", []):
            path, method = setting.get("ResourcePath", "/*"), setting.get("HttpMethod", "*")
            rank = {("/~1tasks", "POST"): 3, ("/~1tasks", "*"): 2, ("/*", "POST"): 2, ("/*", "*"): 1}.get(
                (path, method), -1
            )
            if rank > best[0] and ("ThrottlingRateLimit" in setting or "ThrottlingBurstLimit" in setting):
                rate, burst = setting.get("ThrottlingRateLimit"), setting.get("ThrottlingBurstLimit")
                best = (rank, logical_id, None if rate is None else float(rate), None if burst is None else burst)
        if best[0] < 0:
            best = (0, logical_id, None, None)
    return best[1], best[2], None if best[3] is None else float(best[3])


_S_ATTRIBUTE = re.compile(r'"([#:]?\w+)"\s*:\s*\{\s*"[SN]"\s*:\s*"([^"]*)"\s*\}')
# One attribute per line, as the VTL files write them: the value may hold quotes of its own (``$util...("\\'")``).
_S_ATTRIBUTE_LINE = re.compile(r'^\s*"([#:]?\w+)"\s*:\s*\{\s*"[SN]"\s*:\s*"(.*)"\s*\}\s*,?\s*$', re.MULTILINE)
_NAME = re.compile(r'"(#\w+)"\s*:\s*"(\w+)"')
_UPDATE_EXPRESSION = re.compile(r'"UpdateExpression"\s*:\s*"([^"]*)"')
_ASSIGNMENT = re.compile(r"(#?\w+)\s*=\s*(?:if_not_exists\(\s*#?\w+\s*,\s*)?(:\w+)")


def _literal_or_computed(value: str) -> str | None:
    return value if "$" not in value else COMPUTED


def _request_attributes(text: str) -> dict[str, str | None]:
    """The attributes a PutItem or UpdateItem request template writes: a PutItem's ``Item`` entries, an UpdateItem's
    ``SET`` assignments (``if_not_exists(a, :v)`` included) resolved through its names and values; a value with a
    template reference in it (``$context...``) is computed per request."""
    found: dict[str, str | None] = {}
    pairs = _S_ATTRIBUTE.findall(text) + _S_ATTRIBUTE_LINE.findall(text)
    values = {name: _literal_or_computed(value) for name, value in pairs if name.startswith(":")}
    names = dict(_NAME.findall(text))
    for name, value in pairs:
        if name[0] not in "#:" and found.get(name) is None:
            found[name] = _literal_or_computed(value)
    for expression in _UPDATE_EXPRESSION.findall(text):
        clause = expression.split("SET", 1)[-1] if "SET" in expression else ""
        clause = re.split(r"\b(?:REMOVE|ADD|DELETE)\b", clause)[0]
        for target, placeholder in _ASSIGNMENT.findall(clause):
            attribute = names.get(target, target)
            if found.get(attribute) is None:
                found[attribute] = values.get(placeholder, COMPUTED)
    return found


def _intake_attributes(resources: Mapping[str, Any]) -> dict[str, str | None]:
    """What POST /tasks' DynamoDB request template writes (PutItem, or an UpdateItem that creates the item)."""
    found: dict[str, str | None] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource.get("Type") != "AWS::ApiGateway::Method" or props.get("HttpMethod") != "POST":
            continue
        integration_ = props.get("Integration", {})
        if not _text(integration_.get("Uri")).endswith(("dynamodb:action/PutItem", "dynamodb:action/UpdateItem")):
            continue
        for template in integration_.get("RequestTemplates", {}).values():
            for name, value in _request_attributes(_text(template)).items():
                if found.get(name) is None:
                    found[name] = value
    return found


def _through_alias(resources: Mapping[str, Any], target: str) -> str:
    """A pipe's target through a ``live`` alias (canary deploys, docs/DEPLOY.md): the function or state machine it
    routes to (a Lambda alias's FunctionName; a state machine alias's version's StateMachineArn)."""
    resource = resources.get(target, {})
    props = resource.get("Properties", {})
    if resource.get("Type") == "AWS::Lambda::Alias":
        return _ref(props.get("FunctionName")) or target
    if resource.get("Type") == "AWS::StepFunctions::StateMachineAlias":
        routes = props.get("RoutingConfiguration") or []
        version = _ref(props.get("DeploymentPreference", {}).get("StateMachineVersionArn")) or (
            _ref(routes[0].get("StateMachineVersionArn")) if routes else ""
        )
        return _ref(resources.get(version, {}).get("Properties", {}).get("StateMachineArn")) or target
    return target


def _pipes(resources: Mapping[str, Any], machines: Mapping[str, Any]) -> tuple[list[Pipe], Counter[str]]:
    """The pipes, and how many readers (pipes, event source mappings) each table's stream has."""
    tables = {k for k, r in resources.items() if r.get("Type") == "AWS::DynamoDB::Table"}
    pipes: list[Pipe] = []
    readers: Counter[str] = Counter()
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            readers[_ref(props.get("EventSourceArn"))] += 1
        if resource.get("Type") != "AWS::Pipes::Pipe":
            continue
        source = _ref(props.get("Source"))
        readers[source] += 1
        parameters = props.get("SourceParameters", {})
        stream = parameters.get("DynamoDBStreamParameters", {})
        target = _through_alias(resources, _ref(props.get("Target")))
        target_type = resources.get(target, {}).get("Type")
        kind = "stepfunctions" if target in machines else "lambda" if target_type == "AWS::Lambda::Function" else ""
        patterns = parameters.get("FilterCriteria", {}).get("Filters", [])
        pipes.append(
            Pipe(
                logical_id,
                _construct_name(logical_id, resource),
                source if source in tables else "",
                kind,
                target,
                int(stream.get("BatchSize", 1)),
                int(stream.get("ParallelizationFactor", 1)),
                tuple(json.loads(f["Pattern"]) for f in patterns),
            )
        )
    return pipes, readers


def _recorder(resources: Mapping[str, Any], machines: Mapping[str, Any], lifecycle: str) -> str | None:
    """The state machine an EventBridge rule starts when a lifecycle execution changes status."""
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        watched = [_ref(a) for a in props.get("EventPattern", {}).get("detail", {}).get("stateMachineArn", [])]
        if lifecycle in watched:
            for target in props.get("Targets", []):
                if _ref(target.get("Arn")) in machines:
                    return _ref(target.get("Arn"))
    return None


def _indexes(table: Mapping[str, Any]) -> tuple[Index, ...]:
    indexes = []
    for gsi in table.get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
        projection = gsi.get("Projection", {})
        indexes.append(
            Index(
                gsi["IndexName"],
                keys["HASH"],
                keys.get("RANGE", ""),
                str(projection.get("ProjectionType", "ALL")),
                frozenset(projection.get("NonKeyAttributes", [])),
            )
        )
    return tuple(indexes)


def _functions(resources: Mapping[str, Any]) -> dict[str, Function]:
    functions = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        name = _construct_name(logical_id, resource)
        reserved = props.get("ReservedConcurrentExecutions")
        functions[name] = Function(
            logical_id,
            name,
            int(props.get("MemorySize", 128)),
            int(props.get("Timeout", 3)),
            None if reserved is None else int(reserved),
        )
    return functions


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def read_design(template: Mapping[str, Any], template_path: str = "") -> Design:
    resources: Mapping[str, Any] = template["Resources"]
    machines = {k: r for k, r in resources.items() if r.get("Type") == "AWS::StepFunctions::StateMachine"}
    pipes, readers = _pipes(resources, machines)
    start = next(p for p in pipes if p.target in machines)
    lifecycle = start.target
    table_id = start.source_table
    table = resources[table_id]["Properties"]
    stage, rate, burst = _stage_throttle(resources)
    return Design(
        template_path=template_path,
        lifecycle=lifecycle,
        lifecycle_type=str(machines[lifecycle]["Properties"].get("StateMachineType", STANDARD)),
        recorder=_recorder(resources, machines, lifecycle),
        tasks_table=table_id,
        key=next(k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH"),
        indexes=_indexes(table),
        pipes=tuple(pipes),
        stream_readers=readers[table_id],
        websocket_apis=sum(
            1
            for r in resources.values()
            if r["Type"] == "AWS::ApiGatewayV2::Api" and r.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"
        ),
        functions=_functions(resources),
        stage_rate=rate,
        stage_burst=burst,
        stage=stage,
        intake=_intake_attributes(resources),
        warm_writes=_number(table.get("WarmThroughput", {}).get("WriteUnitsPerSecond")),
        max_writes=_number(table.get("OnDemandThroughput", {}).get("MaxWriteRequestUnits")),
    )


def function_name(logical_id_or_name: str, design: Design) -> str:
    for name, function in design.functions.items():
        if logical_id_or_name in (name, function.logical_id):
            return name
    return logical_id_or_name


# --------------------------------------------------------------------------------------------------
# Writes to the task item, read from a definition's DynamoDB states
# --------------------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _literal(value: Mapping[str, Any] | None) -> str | None:
    """The literal S/N of an attribute value, None for a computed one (``S.$``)."""
    if not value:
        return COMPUTED
    for kind in ("S", "N"):
        if kind in value:
            return str(value[kind])
    return COMPUTED


@dataclass(frozen=True)
class ItemWrite:
    """One write to the task item: attributes set (to a literal or a computed value) and removed."""

    state: str
    sets: Mapping[str, str | None]
    removes: frozenset[str] = frozenset()
    put: bool = False  # the whole item replaced (PutItem)


def parse_update(state_name: str, params: Mapping[str, Any]) -> ItemWrite:
    names: Mapping[str, str] = params.get("ExpressionAttributeNames", {})
    values: Mapping[str, Any] = params.get("ExpressionAttributeValues", {})
    expression = str(params.get("UpdateExpression", ""))
    pieces = _CLAUSE.split(expression)
    sets: dict[str, str | None] = {}
    removes: set[str] = set()
    for keyword, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for part in _split_top(body):
            if keyword == "SET" and "=" in part:
                target, value = (s.strip() for s in part.split("=", 1))
                placeholder = value if value.startswith(":") and re.fullmatch(r":\w+", value) else ""
                sets[names.get(target, target)] = _literal(values.get(placeholder)) if placeholder else COMPUTED
            elif keyword == "REMOVE":
                removes.add(names.get(part, part))
            elif keyword in ("ADD", "DELETE"):
                target = part.split()[0]
                sets[names.get(target, target)] = COMPUTED
    return ItemWrite(state_name, sets, frozenset(removes))


def item_writes(definition: Mapping[str, Any], states: Iterable[str]) -> list[ItemWrite]:
    writes = []
    for name in states:
        state = definition["States"].get(name, {})
        action = integration(state)
        params = state.get("Parameters", {})
        if action == "dynamodb:updateItem":
            writes.append(parse_update(name, params))
        elif action == "dynamodb:putItem":
            item = params.get("Item", {})
            writes.append(ItemWrite(name, {k: _literal(v) for k, v in item.items()}, put=True))
    return writes


@dataclass
class ItemImage:
    """What the model knows of the task item between writes: attribute -> literal value (None: computed)."""

    attributes: dict[str, str | None] = field(default_factory=dict)

    def apply(self, write: ItemWrite) -> tuple[dict[str, str | None], dict[str, str | None]]:
        before = dict(self.attributes)
        if write.put:
            self.attributes = dict(write.sets)
        else:
            self.attributes.update(write.sets)
            for name in write.removes:
                self.attributes.pop(name, None)
        return before, dict(self.attributes)


def _key_label(value: str | None) -> str:
    return "(one per task)" if value is None else value


def index_writes(
    index: Index, before: Mapping[str, str | None] | None, write: ItemWrite, after: Mapping[str, Any]
) -> list[str]:
    """The index entries one write touches, as key values (each a write to the index, DynamoDB's GSI rule: a key
    change is a delete at the old key and a put at the new one; a changed projected attribute rewrites the entry).
    A computed key value is ``(one per task)``."""
    key = index.hash_key
    had = before is not None and key in before
    has = key in after
    if not had and not has:
        return []
    old = _key_label(before.get(key)) if had and before is not None else None
    new = _key_label(after.get(key)) if has else None
    if had and not has:
        return [str(old)]
    if has and not had:
        return [str(new)]
    changed = key in write.sets and (write.sets[key] is None or before is None or write.sets[key] != before.get(key))
    if changed:
        return [str(old), str(new)]
    touched = set(write.sets) | set(write.removes)
    if write.put or any(index.projects(a) for a in touched):
        return [str(new)]
    return []


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathLoad:
    """What one task on one path asks of each limited resource."""

    name: str
    description: str
    states: tuple[str, ...]  # lifecycle states entered, then the recorder's (prefixed 'recorder:')
    transitions: int
    start_executions: int
    redrives: int = 0
    lambda_invocations: Mapping[str, int] = field(default_factory=dict)
    outbox_deliveries: int = 0
    item_writes: int = 0  # writes to the task item (the intake's PutItem and the definitions' updates)
    index_writes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # index -> key value -> writes
    events_put: int = 0  # outcome events (one per outbox delivery)
    rule_invocations: int = 0  # the failure rule's start of the recorder
    outbox_function: str = ""  # the outbox pipe's target (its invocations come after the execution)
    transitions_source: str = "definition"
    measured: Mapping[str, float] = field(default_factory=dict)  # function -> ms, when a run measured them

    def write_units(self, design: Design, item_kb: float) -> float:
        units = self.item_writes * math.ceil(item_kb)
        by_name = {i.name: i for i in design.indexes}
        for index, keys in self.index_writes.items():
            per = math.ceil(item_kb) if by_name[index].projection == "ALL" else 1
            units += per * sum(keys.values())
        return float(units)


def _matches(pattern: Any, value: Any) -> bool:
    """EventBridge's pattern matching for the shapes the pipes use: nested objects, lists of literal values."""
    if isinstance(pattern, list):
        return value is not None and value in pattern
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return False
        return all(_matches(p, value.get(k)) for k, p in pattern.items())
    return bool(pattern == value)


def stream_record(event: str, image: Mapping[str, str | None]) -> dict[str, Any]:
    """A stream record's shape as the filters see it (NEW_IMAGE, string attributes)."""
    new_image = {k: {"S": v} for k, v in image.items() if v is not None}
    return {"eventName": event, "dynamodb": {"NewImage": new_image}}


def deliveries(pipe: Pipe | None, records: Sequence[Mapping[str, Any]]) -> int:
    if pipe is None:
        return 0
    if not pipe.filters:
        return len(records)
    return sum(1 for r in records if any(_matches(f, r) for f in pipe.filters))


def _lambda_of(state: Mapping[str, Any], design: Design) -> str | None:
    if integration(state) != "lambda:invoke":
        return None
    target = str(state.get("Parameters", {}).get("FunctionName", ""))
    placeholder = re.fullmatch(r"\$\{(\w+?)(Arn|Name)?\}", target)
    name = placeholder.group(1) if placeholder else target
    return function_name(name, design)


def _walk(
    name: str,
    description: str,
    design: Design,
    lifecycle: Mapping[str, Any],
    runs: Sequence[tuple[Mapping[str, Any], Sequence[str], str]],
    *,
    starts: int,
    redrives: int = 0,
    rule_invocations: int = 0,
) -> PathLoad:
    """A path from its executions: (definition, states entered, label) each, in order."""
    image = ItemImage()
    intake = ItemWrite("POST /tasks", dict(design.intake), put=True)
    records = []
    writes: dict[str, Counter[str]] = {i.name: Counter() for i in design.indexes}
    count = 0
    lambdas: Counter[str] = Counter()

    def write(item_write: ItemWrite, event: str) -> None:
        nonlocal count
        before, after = image.apply(item_write)
        count += 1
        records.append(stream_record(event, after))
        for index in design.indexes:
            writes[index.name].update(index_writes(index, None if item_write.put else before, item_write, after))

    write(intake, "INSERT")
    entered: list[str] = []
    for definition, states, label in runs:
        for state_name in states:
            entered.append(f"{label}{state_name}")
            fn = _lambda_of(definition["States"][state_name], design)
            if fn:
                lambdas[fn] += 1
        for item_write in item_writes(definition, states):
            write(item_write, "MODIFY")
    outbox = design.outbox_pipe
    delivered = deliveries(outbox, records)
    if outbox is not None and delivered:
        lambdas[function_name(outbox.target, design)] += delivered
    return PathLoad(
        name=name,
        description=description,
        states=tuple(entered),
        transitions=len(entered),
        start_executions=starts,
        redrives=redrives,
        lambda_invocations=dict(lambdas),
        outbox_deliveries=delivered,
        item_writes=count,
        index_writes={k: dict(v) for k, v in writes.items() if v},
        events_put=delivered,
        rule_invocations=rule_invocations,
        outbox_function=function_name(outbox.target, design) if outbox is not None else "",
    )


def _spec(name: str) -> PathSpec:
    return REJECTED if name == "rejected" else next(p for p in PATHS if p.name == name)


def _failure(definition: Mapping[str, Any], spec: PathSpec) -> tuple[list[str], bool]:
    """The states a failing execution enters, and whether a Catch handles the failure (else the execution fails)."""
    assert spec.failing_state and spec.error
    try:
        detour = catch_target(definition, spec.failing_state, spec.error)
    except ValueError:
        full = follow_path(definition)
        return full[: full.index(spec.failing_state) + 1], False
    return follow_path(definition, detours={spec.failing_state: detour}), True


def path_loads(
    design: Design,
    lifecycle: Mapping[str, Any] | None = None,
    recorder: Mapping[str, Any] | None = None,
) -> dict[str, PathLoad]:
    if lifecycle is None:
        express = design.lifecycle_type == EXPRESS and EXPRESS_ASL_PATH.exists()
        lifecycle = load_definition(EXPRESS_ASL_PATH if express else ASL_PATH)
    if recorder is None and design.recorder and RECORDER_ASL_PATH.exists():
        recorder = load_definition(RECORDER_ASL_PATH)
    records_failures = recorder is not None and design.recorder is not None and design.lifecycle_type == STANDARD
    loads: dict[str, PathLoad] = {}
    happy = follow_path(lifecycle)
    loads["happy"] = _walk("happy", _spec("happy").description, design, lifecycle, [(lifecycle, happy, "")], starts=1)
    for name in ("rejected", "failed"):
        spec = _spec(name)
        if spec.failing_state not in lifecycle["States"]:
            continue
        states, caught = _failure(lifecycle, spec)
        runs: list[tuple[Mapping[str, Any], Sequence[str], str]] = [(lifecycle, states, "")]
        starts, rules = 1, 0
        if not caught and records_failures and recorder is not None:
            runs.append((recorder, follow_path(recorder), "recorder:"))
            starts, rules = 2, 1
        loads[name] = _walk(name, spec.description, design, lifecycle, runs, starts=starts, rule_invocations=rules)
    spec = _spec("replayed")
    if spec.failing_state in lifecycle["States"]:
        states, caught = _failure(lifecycle, spec)
        runs = [(lifecycle, states, "")]
        starts, rules, redrives = 1, 0, 0
        if not caught and records_failures and recorder is not None:
            runs.append((recorder, follow_path(recorder), "recorder:"))
            starts, rules = 2, 1
        if not caught and design.lifecycle_type == STANDARD:
            assert spec.failing_state is not None
            runs.append((lifecycle, follow_path(lifecycle, spec.failing_state), "redrive:"))
            redrives = 1
        else:
            runs.append((lifecycle, happy, "replay:"))
            starts += 1
        loads["replayed"] = _walk(
            "replayed",
            spec.description,
            design,
            lifecycle,
            runs,
            starts=starts,
            redrives=redrives,
            rule_invocations=rules,
        )
    return loads


def iter_states(load: PathLoad) -> Iterator[tuple[str, str]]:
    """(label, state) for each state entered."""
    for entry in load.states:
        label, _, name = entry.rpartition(":")
        yield label, name


WHAT_IF_KEYS: Final = ("ParallelizationFactor", "BatchSize", "ThrottlingRateLimit", "ThrottlingBurstLimit")


def with_settings(design: Design, changes: Mapping[str, float]) -> Design:
    """The design with some template settings changed, to see what a change would give before making it:
    ``PIPE.ParallelizationFactor``, ``PIPE.BatchSize`` (PIPE: a pipe's name, e.g. TaskChangesPipe),
    ``ThrottlingRateLimit``, ``ThrottlingBurstLimit`` (the stage's). Raises ValueError for anything else."""
    pipes = {p.name: p for p in design.pipes}
    stage: dict[str, float | None] = {"stage_rate": design.stage_rate, "stage_burst": design.stage_burst}
    for key, value in changes.items():
        target, _, setting = key.rpartition(".")
        if not target and setting in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            stage["stage_rate" if setting == "ThrottlingRateLimit" else "stage_burst"] = float(value)
        elif target in pipes and setting in ("ParallelizationFactor", "BatchSize"):
            pipe = pipes[target]
            if setting == "ParallelizationFactor":
                pipes[target] = replace(pipe, parallelization_factor=int(value))
            else:
                pipes[target] = replace(pipe, batch_size=int(value))
        else:
            names = ", ".join(f"{p}.ParallelizationFactor, {p}.BatchSize" for p in pipes)
            raise ValueError(f"unknown setting {key!r}: one of {names}, ThrottlingRateLimit, ThrottlingBurstLimit")
    return replace(
        design,
        pipes=tuple(pipes[p.name] for p in design.pipes),
        stage_rate=stage["stage_rate"],
        stage_burst=stage["stage_burst"],
    )
