"""`taskrail local up` follows the sources: function code is reloaded, a template change is refused, never ignored.

The stack watches what the template is made from (``infra/``, ``workflows/``, ``lambdas/``, and ``asl/``, which
the state machines are provisioned from). After a change (once the files have been quiet for a moment) it
synthesizes the app again, in a subprocess, into a private folder, and compares the new template with the one it
runs, asset hashes aside:

* **the same template** but other function assets (an edited handler, logic or task type whose module leaves
  the template alone): each function whose asset changed runs on the new asset folder, exactly what `cdk deploy`
  would upload. Idle workers are replaced at once, a busy one when its invocation ends
  (:meth:`taskrail.local.functions.FunctionPool.reload_code`). moto's state is untouched: tables, queues,
  buckets, executions and IAM stay as they are (the roles and policies did not change, or the template would
  differ);
* **a different template** (a resource, a policy, the workflow, the API's request model, e.g. a new task type
  in its ``type`` enum), or an ``asl/`` file that differs from what the state machines were created from: not
  applied. The running stack keeps the template it started with; the refusal names what changed and how to
  apply it (restart `taskrail local up`, with ``--state-dir`` to keep the data);
* a synth that fails (a syntax error in ``infra/``) changes nothing and says so.

Every outcome is logged (``taskrail.local.reload``, on the terminal of `local up`) and recorded in
``<log dir>/reload.json``, the latest first.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext

__all__ = ["CodeReloader", "ReloadOutcome", "SourceWatcher", "latest_outcomes", "template_changes"]

log = logging.getLogger("taskrail.local.reload")

WATCHED: Final = ("infra", "workflows", "lambdas", "asl")
WATCH_INTERVAL_S: Final = 1.0  # a stat of each watched file per second: well under 1 ms of CPU
SYNTH_TIMEOUT_S: Final = 600.0
OUTCOMES_KEPT: Final = 20
OUTCOMES_FILE: Final = "reload.json"
FUNCTION: Final = "AWS::Lambda::Function"
VERSION: Final = "AWS::Lambda::Version"
_SYNTH = "import sys; from pathlib import Path; from infra.synth import synth; synth(Path(sys.argv[1]), force=True)"


def _fingerprint(roots: Iterable[Path]) -> dict[str, tuple[int, int]]:
    found = {}
    for root in roots:
        for path in root.rglob("*"):
            if "__pycache__" in path.parts or path.suffix == ".pyc" or ".mypy_cache" in path.parts:
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


class SourceWatcher:
    """Which files under ``roots`` were added, changed or removed since the last call (polled, cheap)."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self._roots = [Path(r) for r in roots]
        self._seen = _fingerprint(self._roots)

    def changed(self) -> list[str]:
        now = _fingerprint(self._roots)
        changed = sorted(p for p in now.keys() | self._seen.keys() if now.get(p) != self._seen.get(p))
        self._seen = now
        return changed


def _versions_by_name(template: dict[str, Any]) -> dict[str, Any]:
    """The template with each Lambda version's logical id stripped of its code hash, everywhere it is named. CDK
    names a function's ``currentVersion`` after a hash of the function's code (a new version is published for new
    code, which the ``live`` alias and its CodeDeploy group then shift to: docs/DEPLOY.md), so an edited handler
    changes that id, and every Ref and GetAtt of it, and nothing else."""
    renamed = {
        logical_id: re.sub(r"[0-9a-f]{32}$", "", logical_id)
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == VERSION and re.search(r"[0-9a-f]{32}$", logical_id)
    }
    if not renamed:
        return copy.deepcopy(template)
    text = json.dumps(template)
    for logical_id, stable in renamed.items():
        text = text.replace(f'"{logical_id}"', f'"{stable}"')
    return dict(json.loads(text))


def _without_assets(template: dict[str, Any]) -> dict[str, Any]:
    """The template with what only names an asset's content left out (its hash in S3Key and in metadata, and in
    the logical ids of the functions' published versions)."""
    bare = _versions_by_name(template)
    for resource in bare.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            for key in [k for k in metadata if k.startswith("aws:asset:")]:
                del metadata[key]
        code = resource.get("Properties", {}).get("Code") if resource.get("Type") == FUNCTION else None
        if isinstance(code, dict) and "S3Key" in code:
            code["S3Key"] = "<asset>"
    return bare


def template_changes(running: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two templates, asset hashes aside: logical ids, or top-level sections."""
    a, b = _without_assets(running), _without_assets(new)
    changes = []
    resources_a, resources_b = a.pop("Resources", {}), b.pop("Resources", {})
    for logical_id in sorted(resources_a.keys() | resources_b.keys()):
        if resources_a.get(logical_id) != resources_b.get(logical_id):
            state = "added" if logical_id not in resources_a else "removed" if logical_id not in resources_b else ""
            changes.append(f"{logical_id} ({state})" if state else logical_id)
    changes += [section for section in sorted(a.keys() | b.keys()) if a.get(section) != b.get(section)]
    return changes


def asset_folder(resource: dict[str, Any], cdk_out: Path) -> Path:
    """A function's staged asset in ``cdk_out`` (as :meth:`FunctionSpec.from_template` finds it)."""
    return cdk_out / ("asset." + str(resource["Properties"]["Code"].get("S3Key", "")).removesuffix(".zip"))


@dataclass
class ReloadOutcome:
    """One change of the sources, and what the running stack did about it."""

    at: str
    changed: list[str]
    outcome: str  # "reloaded" | "refused" | "unchanged" | "failed"
    message: str
    functions: list[str] = field(default_factory=list)


class CodeReloader:
    """The stack's source watcher (off unless the stack's options ask for it: `taskrail local up` does)."""

    name: ClassVar[str] = "reload"
    restart_on_reset: ClassVar[bool] = False

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._folders: list[Path] = []
        self.outcomes: list[ReloadOutcome] = []
        self._record: Path | None = None
        self._lock = threading.Lock()

    def start(self, context: EmulatorContext) -> None:
        if context.project_root is None:
            return
        root = Path(context.project_root)
        lambda_emulator = context.running.get("lambda")
        pool = getattr(lambda_emulator, "pool", None)
        if pool is None:
            raise RuntimeError("the code reloader needs the Lambda emulator started before it")
        self._record = Path(context.log_dir) / OUTCOMES_FILE if context.log_dir is not None else None
        if self._record is not None:
            self._record.unlink(missing_ok=True)  # an earlier stack's
        watcher = SourceWatcher(root / name for name in WATCHED if (root / name).is_dir())
        state = _Running(
            root=root,
            template=context.template,
            functions={construct: spec.logical_id for construct, spec in context.resources.functions.items()},
            asl={p.name: p.read_text() for p in (root / "asl").glob("*.asl.json")},
            reload_code=pool.reload_code,
        )
        self._thread = threading.Thread(target=self._watch, args=(watcher, state), name="local-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SYNTH_TIMEOUT_S)
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)

    def _watch(self, watcher: SourceWatcher, state: _Running) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            changed = watcher.changed()
            if not changed:
                continue
            while not self._stop.wait(WATCH_INTERVAL_S):  # an editor writes in several steps: let it finish
                more = watcher.changed()
                if not more:
                    break
                changed = sorted(set(changed) | set(more))
            if self._stop.is_set():
                return
            relative = [str(Path(p).relative_to(state.root)) for p in changed]
            try:
                outcome = self._apply(state, relative)
            except Exception as error:  # the stack keeps running on what it had
                log.exception("reload failed")
                outcome = self._outcome(relative, "failed", f"not applied: {type(error).__name__}: {error}")
            self._report(outcome)

    def _apply(self, state: _Running, changed: list[str]) -> ReloadOutcome:
        log.warning("%s changed: synthesizing the template again …", ", ".join(changed[:5]))
        folder = Path(tempfile.mkdtemp(prefix="taskrail-reload-"))
        self._folders.append(folder)
        synth = subprocess.run(
            [sys.executable, "-c", _SYNTH, str(folder)],
            cwd=state.root,
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_S,
            check=False,
        )
        if synth.returncode != 0:
            tail = (synth.stderr or synth.stdout).strip().splitlines()[-5:]
            return self._outcome(changed, "failed", "not applied: the app did not synthesize: " + " / ".join(tail))
        templates = sorted(folder.glob("*.template.json"))
        if len(templates) != 1:
            return self._outcome(changed, "failed", f"not applied: the synth wrote {len(templates)} templates")
        new = json.loads(templates[0].read_text())
        differences = template_changes(state.template, new)
        differences += [
            f"asl/{name}"
            for name in sorted({*state.asl, *(p.name for p in (state.root / "asl").glob("*.asl.json"))})
            if state.asl.get(name) != _read(state.root / "asl" / name)
        ]
        if differences:
            return self._outcome(
                changed,
                "refused",
                "the template changed (" + ", ".join(differences[:8]) + (", …" if len(differences) > 8 else "")
                + "): NOT applied to the running stack, which keeps the template it started with. Restart "
                "`taskrail local up` to apply it (--state-dir DIR keeps tables, queues and objects).",
            )  # fmt: skip
        paths = {
            construct: str(asset_folder(new["Resources"][logical_id], folder))
            for construct, logical_id in state.functions.items()
        }
        reloaded = state.reload_code(paths)
        state.template = new
        if not reloaded:
            return self._outcome(changed, "unchanged", "nothing to do: the template and the code are as before")
        return self._outcome(
            changed,
            "reloaded",
            f"function code reloaded: {', '.join(reloaded)} restart on the new code; the stack's state is kept",
            reloaded,
        )

    @staticmethod
    def _outcome(changed: list[str], outcome: str, message: str, functions: list[str] | None = None) -> ReloadOutcome:
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return ReloadOutcome(at=at, changed=changed, outcome=outcome, message=message, functions=functions or [])

    def _report(self, outcome: ReloadOutcome) -> None:
        log.warning("reload %s: %s", outcome.outcome, outcome.message)  # warnings reach the terminal of `local up`
        with self._lock:
            self.outcomes.insert(0, outcome)
            del self.outcomes[OUTCOMES_KEPT:]
            if self._record is not None:
                from taskrail.local.state import write_private

                write_private(self._record, json.dumps([asdict(o) for o in self.outcomes], indent=2))


def latest_outcomes(log_dir: Path) -> list[ReloadOutcome]:
    """What the running stack did about the source changes it saw, the latest first (``taskrail local status``)."""
    text = _read(Path(log_dir) / OUTCOMES_FILE)
    try:
        return [ReloadOutcome(**outcome) for outcome in json.loads(text)] if text else []
    except (ValueError, TypeError):
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@dataclass
class _Running:
    root: Path
    template: dict[str, Any]
    functions: dict[str, str]  # construct name -> logical id
    asl: dict[str, str]  # asl/ file name -> the text the state machines were created from
    reload_code: Callable[[dict[str, str]], list[str]]
