"""`make test-count` (``python -m tests.count``): test functions and their collected cases, counted apart.

A function parametrized over 75 inputs is one behaviour checked 75 ways, not 75 behaviours: the README quotes
both numbers. Collection only (no test runs); the order plugin is off so the count is the same every time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Collected:
    def __init__(self) -> None:
        self.functions: dict[str, set[tuple[str, str]]] = {}
        self.cases: Counter[str] = Counter()
        self.errors: list[str] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(report.nodeid)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            relative = item.path.relative_to(ROOT)
            folder = "/".join(relative.parts[:2]) if len(relative.parts) > 2 else relative.parts[0]
            function = getattr(item, "originalname", item.name)
            owner = getattr(getattr(item, "cls", None), "__name__", "")
            self.functions.setdefault(folder, set()).add((str(relative), f"{owner}.{function}"))
            self.cases[folder] += 1


def main(argv: list[str] | None = None) -> int:
    collected = _Collected()
    args = [
        "--collect-only",
        "-q",
        "-p",
        "no:randomly",
        "--continue-on-collection-errors",
        *(argv if argv is not None else sys.argv[1:]),
    ]
    with open("/dev/null", "w") as quiet:  # noqa: PTH123 - pytest's own listing is not the report
        stdout, sys.stdout = sys.stdout, quiet
        try:
            status = pytest.main(args, plugins=[collected])
        finally:
            sys.stdout = stdout
    if not collected.cases:
        print(f"nothing collected (pytest exit status {int(status)}); run `pytest --collect-only` to see why")
        return 1
    print(f"{'folder':22} {'test functions':>15} {'cases':>8}")
    for folder in sorted(collected.cases):
        print(f"{folder:22} {len(collected.functions[folder]):>15} {collected.cases[folder]:>8}")
    functions = sum(len(f) for f in collected.functions.values())
    cases = sum(collected.cases.values())
    print(f"{'total':22} {functions:>15} {cases:>8}")
    print(f"{functions} test functions, {cases} collected cases (parametrization adds {cases - functions})")
    for error in collected.errors:
        print(f"not counted, failed to collect: {error} (run `pytest --collect-only {error}`)")
    return 1 if collected.errors else 0


if __name__ == "__main__":
    sys.exit(main())
