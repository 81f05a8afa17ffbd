"""Records the failure paths of a design as a baseline for later reports (``docs/cost-baseline-issue19.json``):
``python -m taskrail.cost.baseline OUTPUT --commit SHA`` in a checkout of that commit with this package's
measuring code (the same instrument as today's report), e.g. the commit before issue 19's workflow change."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from taskrail.cost.measure import cost_report
from taskrail.cost.model import EXPRESS, STANDARD, TASKRAIL

BASELINE_PATHS = ("failed", "replayed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--commit", required=True, help="the commit measured")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    report = cost_report(runs=args.runs)
    paths = {}
    for name in BASELINE_PATHS:
        profile = report.profiles[TASKRAIL][name]
        paths[name] = {
            "transitions": profile.transitions,
            "states": list(profile.states),
            "replayAction": profile.replay_action,
            "standardTotal": round(report.cost(TASKRAIL, STANDARD, name).total, 2),
            "expressTotal": round(report.cost(TASKRAIL, EXPRESS, name).total, 2),
        }
    baseline = {
        "commit": args.commit,
        "measuredAt": datetime.now(UTC).date().isoformat(),
        "runsPerPath": args.runs,
        "note": "failure caught into RecordFailure -> TaskFailed; replayed as a new execution {taskId}-r1",
        "paths": paths,
    }
    args.output.write_text(json.dumps(baseline, indent=2) + "\n")
    print(json.dumps(baseline, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
