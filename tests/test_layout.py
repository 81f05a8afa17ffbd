"""The test tree can be collected as one run: pytest imports a test module of a folder that is not a package under
its basename alone, so two such modules with one basename fail the whole collection ("import file mismatch";
CI at 75c4827 stopped after 13 s with tests/unit/test_item_size.py and tests/local/services/test_item_size.py)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_two_test_modules_outside_packages_share_a_basename() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for module in TESTS.rglob("test_*.py"):
        if not (module.parent / "__init__.py").exists():
            by_name[module.name].append(str(module.relative_to(TESTS)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
