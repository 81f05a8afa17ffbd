"""ASL mutator: small, plausible edits of the generated state machine definitions.

Operators (each mutant is one edit of one state):
- ``delete-catch``   a catcher removed;
- ``delete-retry``   a retrier removed;
- ``error-equals``   one name of a retrier's or catcher's ``ErrorEquals`` dropped (replaced by a name nothing
  raises when it is the only one);
- ``flip-condition`` a DynamoDB ``ConditionExpression`` comparator flipped (``=`` ↔ ``<>``,
  ``attribute_exists`` ↔ ``attribute_not_exists``);
- ``drop-condition`` the ``ConditionExpression`` removed (with the placeholders only it used, which DynamoDB
  would otherwise refuse as unused);
- ``result-path``    a state's or catcher's ``ResultPath`` changed (a path → ``null``, ``null`` → ``"$"``).

The definitions come from the scratch tree's synth (``asl/`` regenerated there from ``workflows/``), so the
mutator follows whatever the workflow code is at the commit under test.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.mutation.aimed import aimed
from bench.mutation.common import (
    AreaResult,
    Mutant,
    Outcome,
    confirmed_run,
    log,
    pick,
    run_pytest,
    synth_in,
    test_env,
)

AIMED = ("tests/workflows, each mutant against the tests aimed at its state (bench/mutation/aimed.py)",)
NEVER_RAISED = "Mutant.NeverRaised"
PLACEHOLDER_NAME = re.compile(r"[#:][A-Za-z0-9_]+")
EXPRESSION_KEYS = ("UpdateExpression", "ConditionExpression", "KeyConditionExpression", "FilterExpression")
FLIPS = (
    (re.compile(r"\battribute_not_exists\("), "attribute_exists("),
    (re.compile(r"\battribute_exists\("), "attribute_not_exists("),
    (re.compile(r" <> "), " = "),
    (re.compile(r" = "), " <> "),
)

Definition = dict[str, Any]
Edit = Callable[[Definition], None]


@dataclass(frozen=True)
class AslMutant:
    workflow: str  # asl file stem: task_lifecycle
    mutant: Mutant
    edit: Edit

    def apply(self, definition: Definition) -> Definition:
        mutated = copy.deepcopy(definition)
        self.edit(mutated)
        return mutated


def states(definition: Definition, prefix: str = "") -> Iterator[tuple[str, list[Any]]]:
    """(display path, key path) of every state, nested Map and Parallel states included."""
    for name, state in definition.get("States", {}).items():
        yield prefix + name, ["States", name]
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                for sub, path in states(state[key], f"{prefix}{name}/"):
                    yield sub, ["States", name, key, *path]
        for index, branch in enumerate(state.get("Branches", [])):
            for sub, path in states(branch, f"{prefix}{name}[{index}]/"):
                yield sub, ["States", name, "Branches", index, *path]


def _at(definition: Any, path: list[Any]) -> Any:
    for key in path:
        definition = definition[key]
    return definition


def _delete(path: list[Any], field: str, index: int) -> Edit:
    def edit(definition: Definition) -> None:
        state = _at(definition, path)
        del state[field][index]
        if not state[field]:
            del state[field]

    return edit


def _drop_error(path: list[Any], field: str, index: int, error: str) -> Edit:
    def edit(definition: Definition) -> None:
        names = _at(definition, path)[field][index]["ErrorEquals"]
        names[:] = [n for n in names if n != error] or [NEVER_RAISED]

    return edit


def _set(path: list[Any], key: str, value: Any) -> Edit:
    def edit(definition: Definition) -> None:
        _at(definition, path)[key] = value

    return edit


def _parameters(state: dict[str, Any]) -> dict[str, Any] | None:
    params = state.get("Parameters") or state.get("Arguments")
    return params if isinstance(params, dict) else None


def _flip(path: list[Any], replaced: str) -> Edit:
    def edit(definition: Definition) -> None:
        _parameters(_at(definition, path))["ConditionExpression"] = replaced  # type: ignore[index]

    return edit


def _drop_condition(path: list[Any]) -> Edit:
    def edit(definition: Definition) -> None:
        params = _parameters(_at(definition, path))
        assert params is not None
        del params["ConditionExpression"]
        used = {m for key in EXPRESSION_KEYS for m in PLACEHOLDER_NAME.findall(str(params.get(key, "")))}
        for attributes in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            if attributes in params:
                params[attributes] = {k: v for k, v in params[attributes].items() if k.split(".")[0] in used}
                if not params[attributes]:
                    del params[attributes]

    return edit


def flips(condition: str) -> Iterator[tuple[str, str]]:
    """Each single-comparator flip of a condition: (description, mutated condition)."""
    for pattern, replacement in FLIPS:
        for match in pattern.finditer(condition):
            if replacement == " <> " and condition[max(match.start() - 1, 0)] in "<>":
                continue
            mutated = condition[: match.start()] + replacement + condition[match.end() :]
            yield f"{condition!r} → {mutated!r}", mutated


def _handler_mutants(workflow: str, name: str, path: list[Any], state: dict[str, Any]) -> Iterator[AslMutant]:
    for field, label in (("Catch", "delete-catch"), ("Retry", "delete-retry")):
        for index, handler in enumerate(state.get(field, [])):
            where = f"{workflow}/{name}.{field}[{index}]"
            errors = handler.get("ErrorEquals", [])
            yield AslMutant(
                workflow, Mutant("asl", f"{where}: {label}", f"ErrorEquals {errors}"), _delete(path, field, index)
            )
            for error in errors:
                yield AslMutant(
                    workflow,
                    Mutant("asl", f"{where}: error-equals drops {error}", f"ErrorEquals {errors}"),
                    _drop_error(path, field, index, error),
                )
            if field == "Catch" and "ResultPath" in handler:
                yield _result_path_mutant(workflow, f"{where}", [*path, field, index], handler["ResultPath"])


def _result_path_mutant(workflow: str, where: str, path: list[Any], value: Any) -> AslMutant:
    new = None if value is not None else "$"
    return AslMutant(
        workflow,
        Mutant("asl", f"{where}: result-path {json.dumps(value)} → {json.dumps(new)}"),
        _set(path, "ResultPath", new),
    )


def mutants(workflow: str, definition: Definition) -> list[AslMutant]:
    found: list[AslMutant] = []
    for name, path in states(definition):
        state = _at(definition, path)
        found.extend(_handler_mutants(workflow, name, path, state))
        params = _parameters(state)
        condition = params.get("ConditionExpression") if params else None
        if isinstance(condition, str):
            for description, mutated in flips(condition):
                found.append(
                    AslMutant(
                        workflow,
                        Mutant("asl", f"{workflow}/{name}: flip-condition {description}"),
                        _flip(path, mutated),
                    )
                )
            found.append(
                AslMutant(
                    workflow, Mutant("asl", f"{workflow}/{name}: drop-condition {condition!r}"), _drop_condition(path)
                )
            )
        if "ResultPath" in state:
            found.append(_result_path_mutant(workflow, f"{workflow}/{name}", path, state["ResultPath"]))
    return found


def run(
    tree: Path,
    workdir: Path,
    select: Callable[[list[Mutant]], list[Mutant]],
    timeout: float,
    wanted: list[Mutant] | None = None,
    tests: tuple[str, ...] | None = None,
    listener: Callable[[AreaResult], None] | None = None,
) -> AreaResult:
    """The sampled mutants, or with ``wanted`` those (a re-check).

    Without ``tests``, each mutant runs the tests aimed at the state it edits (:func:`bench.mutation.aimed.aimed`:
    the whole of ``tests/workflows`` took 10-40 min per mutant on this 2-core machine), and a failure counts as a
    kill only when that test, run alone on the unmutated definitions, passes: the aimed selections share no
    baseline run, so each kill is shown against its own. A mutant its aimed tests do not kill is a survivor of the
    run (re-check it against more tests with ``--recheck --tests``). With ``tests``, every mutant runs those, after
    one baseline run of them."""
    env = test_env(workdir)
    synth_in(tree, env)
    definitions = {
        p.name.removesuffix(".asl.json"): json.loads(p.read_text()) for p in sorted((tree / "asl").glob("*.asl.json"))
    }
    every = [m for workflow, definition in definitions.items() for m in mutants(workflow, definition)]
    chosen, missing = pick([m.mutant for m in every], select, wanted)
    shown = tests or AIMED
    result = AreaResult("asl", shown, total=len(every), missing=missing, listener=listener)
    result.sampled = len(chosen)
    mutant_dir = workdir / "asl-mutant"
    mutant_dir.mkdir(parents=True, exist_ok=True)
    env = test_env(workdir, TASKRAIL_ASL_DIR=str(mutant_dir))
    _write(mutant_dir, definitions)
    if tests is not None:
        baseline = confirmed_run(tree, tests, env, timeout, result.flaky)
        if not baseline.passed:
            result.baseline_error = f"the tests fail with no mutant: {baseline.first_failure}"
            return result
    for number, candidate in enumerate([m for m in every if m.mutant.ident in chosen], 1):
        selection = tests or aimed(candidate.mutant.ident)
        _write(mutant_dir, {**definitions, candidate.workflow: candidate.apply(definitions[candidate.workflow])})
        verdict = confirmed_run(tree, selection, env, timeout, result.flaky)
        killed, killed_by = not verdict.passed, verdict.first_failure
        if tests is None and killed:
            _write(mutant_dir, definitions)
            without = run_pytest(tree, (killed_by,), env, timeout) if "::" in killed_by else None
            if without is None or not without.passed:  # a timeout, or a test that fails anyway: no kill shown
                log(f"asl: {killed_by} does not pass without the mutant; {candidate.mutant.ident} not killed")
                killed, killed_by = False, ""
        outcome = Outcome(candidate.mutant, killed, killed_by, verdict.seconds)
        result.add(outcome)
        log(f"asl {number}/{len(chosen)} {outcome.verdict} {candidate.mutant.ident} ({verdict.seconds:.0f} s)")
    return result


def _write(folder: Path, definitions: dict[str, Definition]) -> None:
    for stale in folder.glob("*.asl.json"):
        stale.unlink()
    for workflow, definition in definitions.items():
        (folder / f"{workflow}.asl.json").write_text(json.dumps(definition, indent=2) + "\n")
