"""Template mutator: small, plausible edits of the synthesized CloudFormation template.

Operators:
- ``drop-statement``  one IAM policy statement removed;
- ``key-type``        a table attribute's type changed (``N`` ↔ ``S``), e.g. a GSI's ``createdAt`` back to STRING;
- ``drop-versioning`` a bucket's ``VersioningConfiguration`` removed;
- ``drop-encryption`` a bucket's, table's, queue's or topic's encryption setting removed;
- ``pipe-filter``     a pipe's filter removed, or one value it matches changed;
- ``remove-alarm``    a CloudWatch alarm removed.

Each mutant is written to a scratch copy of ``cdk.out`` (the other files linked) and the tests read it through
``TASKRAIL_TEMPLATE`` (``tests/conftest.py``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.mutation.common import AreaResult, Mutant, Outcome, confirmed_run, log, pick, synth_in, test_env

# tests/infra asserts the template; the reconciler's workflow tests provision the table and query its indexes.
# The synth-cache test compares the template fixture with synth()'s own output, which an override never is; the
# index-rename test synthesizes its own edited app and starts the local stack from it, which the override replaces.
# The CDK CLI and pinned-node tests synthesize through the CLI into folders of their own and never read the
# template under test, so no template mutant can reach them (they took minutes of each mutant's run).
TESTS = (
    "tests/infra",
    "tests/workflows/test_reconciler.py",
    "--ignore=tests/infra/test_cdk_cli.py",
    "--ignore=tests/infra/test_node_runtime.py",
    "--deselect",
    "tests/infra/test_local_follows_template.py::test_synth_is_skipped_when_no_source_changed",
    "--deselect",
    "tests/infra/test_local_follows_template.py::test_both_indexes_renamed_in_infra_reach_the_reconcilers_query_and_the_list_route",
)
MUTANT_VALUE = "MUTANT"
ENCRYPTION = {
    "AWS::S3::Bucket": "BucketEncryption",
    "AWS::DynamoDB::Table": "SSESpecification",
    "AWS::SQS::Queue": "KmsMasterKeyId",
    "AWS::SNS::Topic": "KmsMasterKeyId",
}

Template = dict[str, Any]
Edit = Callable[[Template], None]


@dataclass(frozen=True)
class TemplateMutant:
    mutant: Mutant
    edit: Edit

    def apply(self, template: Template) -> Template:
        mutated = copy.deepcopy(template)
        self.edit(mutated)
        return mutated


def _mutant(ident: str, edit: Edit, detail: str = "") -> TemplateMutant:
    return TemplateMutant(Mutant("template", ident, detail), edit)


def _props(template: Template, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def _drop_statement(logical_id: str, index: int) -> Edit:
    def edit(template: Template) -> None:
        del _props(template, logical_id)["PolicyDocument"]["Statement"][index]

    return edit


def _key_type(logical_id: str, index: int, new: str) -> Edit:
    def edit(template: Template) -> None:
        _props(template, logical_id)["AttributeDefinitions"][index]["AttributeType"] = new

    return edit


def _drop_property(logical_id: str, key: str) -> Edit:
    def edit(template: Template) -> None:
        del _props(template, logical_id)[key]

    return edit


def _remove_resource(logical_id: str) -> Edit:
    def edit(template: Template) -> None:
        del template["Resources"][logical_id]

    return edit


def _set_filter(logical_id: str, index: int, pattern: str | None) -> Edit:
    def edit(template: Template) -> None:
        source = _props(template, logical_id)["SourceParameters"]
        if pattern is None:
            del source["FilterCriteria"]
        else:
            source["FilterCriteria"]["Filters"][index]["Pattern"] = pattern

    return edit


def _leaf_lists(pattern: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            yield from _leaf_lists(value, (*path, key))
    elif isinstance(pattern, list) and pattern and all(isinstance(v, str) for v in pattern):
        yield path


def _changed_pattern(pattern: dict[str, Any], path: tuple[str, ...]) -> str:
    mutated = copy.deepcopy(pattern)
    target = mutated
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = [MUTANT_VALUE]
    return json.dumps(mutated)


def _policy_mutants(logical_id: str, properties: dict[str, Any]) -> Iterator[TemplateMutant]:
    for index, statement in enumerate(properties["PolicyDocument"]["Statement"]):
        actions = statement.get("Action")
        yield _mutant(
            f"{logical_id}.Statement[{index}]: drop-statement", _drop_statement(logical_id, index), f"{actions}"
        )


def _table_mutants(logical_id: str, properties: dict[str, Any]) -> Iterator[TemplateMutant]:
    for index, attribute in enumerate(properties.get("AttributeDefinitions", [])):
        old = attribute["AttributeType"]
        new = "S" if old != "S" else "N"
        name = attribute["AttributeName"]
        yield _mutant(f"{logical_id}.{name}: key-type {old} → {new}", _key_type(logical_id, index, new))


def _pipe_mutants(logical_id: str, properties: dict[str, Any]) -> Iterator[TemplateMutant]:
    filters = properties.get("SourceParameters", {}).get("FilterCriteria", {}).get("Filters", [])
    if filters:
        yield _mutant(f"{logical_id}: pipe-filter removed", _set_filter(logical_id, 0, None))
    for index, entry in enumerate(filters):
        pattern = json.loads(entry["Pattern"])
        for path in _leaf_lists(pattern):
            where = ".".join(path)
            yield _mutant(
                f"{logical_id}.Filters[{index}]: pipe-filter {where} → [{MUTANT_VALUE}]",
                _set_filter(logical_id, index, _changed_pattern(pattern, path)),
            )


def mutants(template: Template) -> list[TemplateMutant]:
    found: list[TemplateMutant] = []
    for logical_id, resource in template["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Policy":
            found.extend(_policy_mutants(logical_id, properties))
        elif kind == "AWS::DynamoDB::Table":
            found.extend(_table_mutants(logical_id, properties))
        elif kind == "AWS::Pipes::Pipe":
            found.extend(_pipe_mutants(logical_id, properties))
        elif kind == "AWS::CloudWatch::Alarm":
            found.append(_mutant(f"{logical_id}: remove-alarm", _remove_resource(logical_id)))
        if kind == "AWS::S3::Bucket" and "VersioningConfiguration" in properties:
            found.append(
                _mutant(f"{logical_id}: drop-versioning", _drop_property(logical_id, "VersioningConfiguration"))
            )
        key = ENCRYPTION.get(kind)
        if key and key in properties:
            found.append(_mutant(f"{logical_id}: drop-encryption ({key})", _drop_property(logical_id, key)))
    return found


def scratch_cdk_out(cdk_out: Path, folder: Path, template_name: str) -> Path:
    """A folder that looks like cdk.out (every file linked) with the template file left for the mutant."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in cdk_out.iterdir():
        link = folder / entry.name
        if entry.name != template_name and not link.exists():
            link.symlink_to(entry)
    return folder / template_name


def run(
    tree: Path,
    workdir: Path,
    select: Callable[[list[Mutant]], list[Mutant]],
    timeout: float,
    wanted: list[Mutant] | None = None,
    tests: tuple[str, ...] | None = None,
    listener: Callable[[AreaResult], None] | None = None,
) -> AreaResult:
    """The sampled mutants, or with ``wanted`` those (a re-check); ``tests`` replaces the area's selection."""
    selection = tests or TESTS
    env = test_env(workdir)
    template_path = synth_in(tree, env)
    template = json.loads(template_path.read_text())
    every = mutants(template)
    chosen, missing = pick([m.mutant for m in every], select, wanted)
    result = AreaResult("template", selection, total=len(every), missing=missing, listener=listener)
    result.sampled = len(chosen)
    target = scratch_cdk_out(template_path.parent, workdir / "template-mutant", template_path.name)
    env = test_env(workdir, TASKRAIL_TEMPLATE=str(target))
    target.write_text(template_path.read_text())
    baseline = confirmed_run(tree, selection, env, timeout, result.flaky)
    if not baseline.passed:
        result.baseline_error = f"the tests fail with no mutant: {baseline.first_failure}"
        return result
    for number, candidate in enumerate([m for m in every if m.mutant.ident in chosen], 1):
        target.write_text(json.dumps(candidate.apply(template), indent=1))
        verdict = confirmed_run(tree, selection, env, timeout, result.flaky)
        outcome = Outcome(candidate.mutant, not verdict.passed, verdict.first_failure, verdict.seconds)
        result.add(outcome)
        log(f"template {number}/{len(chosen)} {outcome.verdict} {candidate.mutant.ident} ({verdict.seconds:.0f} s)")
    return result
