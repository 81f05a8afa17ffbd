"""``taskrail iam``: per principal, the actions it used and the grants nothing used, from a local run's IAM log.

Reads a stack's files in its log folder (``.taskrail/logs`` by default; the most recent stack's unless ``--pid``):
``iam-decisions-<pid>.jsonl`` (every decision the local AWS endpoint made: principal, action, resource, allowed or
denied, the statement that decided) and ``iam-grants-<pid>.json`` (every statement of the template's policies).
A grant no call used is a candidate for removal: least privilege as a measured fact, for the paths the run
exercised.

``python -m taskrail.local.iam.report [LOG_DIR] [--pid PID] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from taskrail.local.iam.coverage import explain, load_reasons, statement_of, unexercised
from taskrail.local.iam.enforce import DECISIONS_FILE, GRANTS_FILE

__all__ = ["format_summary", "latest_pid", "main", "summarize"]


def latest_pid(log_dir: Path) -> int | None:
    """The pid of the stack that wrote the most recent decisions file in ``log_dir``."""
    files = sorted(log_dir.glob(DECISIONS_FILE.format(pid="*")), key=lambda p: p.stat().st_mtime)
    return int(files[-1].stem.rsplit("-", 1)[1]) if files else None


def summarize(log_dir: Path, pid: int) -> dict[str, Any]:
    decisions_file = log_dir / DECISIONS_FILE.format(pid=pid)
    decisions = [json.loads(line) for line in decisions_file.read_text().splitlines() if line.strip()]
    grants = json.loads((log_dir / GRANTS_FILE.format(pid=pid)).read_text())
    principals: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        entry = principals.setdefault(decision["principal"], {"calls": 0, "denials": 0, "actions": Counter()})
        entry["calls"] += 1
        entry["denials"] += 0 if decision["allowed"] else 1
        entry["actions"][decision["action"]] += 1
    actions_by_statement: dict[tuple[str, int], set[str]] = {}
    for decision in decisions:
        statement = statement_of(decision["decided_by"]) if decision["allowed"] else None
        if statement is not None:
            actions_by_statement.setdefault(statement, set()).add(decision["action"])
    coverage = explain(
        unexercised(grants, lambda g: actions_by_statement.get((g["policy"], g["statement"]), set())), load_reasons()
    )
    return {
        "calls": len(decisions),
        "denials": [d for d in decisions if not d["allowed"]],
        "principals": {k: {**v, "actions": dict(v["actions"])} for k, v in sorted(principals.items())},
        "unexercised": [
            {"grant": grant.describe(), "kept_because": reason.reason if reason else None}
            for grant, reason in [*coverage.explained, *((g, None) for g in coverage.unexplained)]
        ],
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"IAM decisions: {summary['calls']}, denials: {len(summary['denials'])}", ""]
    for principal, entry in summary["principals"].items():
        lines.append(f"{principal.rsplit('/', 1)[-1]}: {entry['calls']} calls, {entry['denials']} denied")
        lines.extend(f"    {count:6d}  {action}" for action, count in sorted(entry["actions"].items()))
    for denial in summary["denials"]:
        lines.append(f"DENIED {denial['principal'].rsplit('/', 1)[-1]}: {denial['action']} on {denial['resource']}")
    lines.append("")
    lines.append(f"grants no call used ({len(summary['unexercised'])} actions):")
    for entry in summary["unexercised"]:
        lines.append(f"    {entry['grant']}")
        why = entry["kept_because"] or "no recorded reason: unused on this run's paths, or a candidate for removal"
        lines.append(f"        kept: {why}" if entry["kept_because"] else f"        {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log_dir", nargs="?", default=str(Path(".taskrail") / "logs"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pid", type=int, help="the stack process whose log to read (default: the most recent)")
    args = parser.parse_args(argv)
    log_dir = Path(args.log_dir)
    pid = args.pid or latest_pid(log_dir)
    if pid is None or not (log_dir / DECISIONS_FILE.format(pid=pid)).exists():
        print(f"no IAM log in {log_dir} (run `taskrail local up` first)", file=sys.stderr)
        return 2
    summary = summarize(log_dir, pid)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
