"""The IAM actions each role of the synthesized template is granted, as a reviewed snapshot.

``tests/infra/fixtures/iam_actions.json`` maps each role (by its construct path, e.g. ``Api/IntegrationRole``) to
the sorted actions its policies allow and the managed policies it has. ``tests/infra/test_iam_snapshot.py`` fails
when the template grants something else, so every new permission is a reviewed diff of that file.

``python -m infra.iam_snapshot``          write the snapshot from cdk.out (synth if the sources changed)
``python -m infra.iam_snapshot --check``  fail if the snapshot differs from the template
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_PATH = ROOT / "tests" / "infra" / "fixtures" / "iam_actions.json"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_name(logical_id: str, resource: dict[str, Any]) -> str:
    """``taskrail/Api/IntegrationRole/Resource`` → ``Api/IntegrationRole``: stable across hash changes."""
    path = resource.get("Metadata", {}).get("aws:cdk:path")
    if not path:
        return logical_id
    return "/".join(path.split("/")[1:]).removesuffix("/Resource")


def _managed_policy_name(arn: Any) -> str:
    if isinstance(arn, dict) and "Fn::Join" in arn:
        arn = "".join(part if isinstance(part, str) else "" for part in arn["Fn::Join"][1])
    return str(arn).split(":policy/", 1)[-1]


def _allowed_actions(document: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") == "Allow":
            actions.update(_as_list(statement.get("Action", [])))
    return actions


def role_actions(template: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Per role: ``actions`` (from AWS::IAM::Policy resources and inline policies) and ``managedPolicies``."""
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    roles = {logical_id: r for logical_id, r in resources.items() if r.get("Type") == "AWS::IAM::Role"}
    actions: dict[str, set[str]] = {logical_id: set() for logical_id in roles}
    for logical_id, role in roles.items():
        for policy in role.get("Properties", {}).get("Policies", []):
            actions[logical_id] |= _allowed_actions(policy.get("PolicyDocument", {}))
    for resource in resources.values():
        if resource.get("Type") != "AWS::IAM::Policy":
            continue
        properties = resource.get("Properties", {})
        for role in properties.get("Roles", []):
            ref = role.get("Ref") if isinstance(role, dict) else None
            if ref in actions:
                actions[ref] |= _allowed_actions(properties.get("PolicyDocument", {}))
    snapshot = {
        _role_name(logical_id, role): {
            "actions": sorted(actions[logical_id]),
            "managedPolicies": sorted(
                _managed_policy_name(arn) for arn in role.get("Properties", {}).get("ManagedPolicyArns", [])
            ),
        }
        for logical_id, role in roles.items()
    }
    return dict(sorted(snapshot.items()))


def render(template: dict[str, Any]) -> str:
    return json.dumps(role_actions(template), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the snapshot differs from the template")
    args = parser.parse_args(argv)
    from infra.synth import load_template

    text = render(load_template())
    where = SNAPSHOT_PATH.relative_to(ROOT)
    if args.check:
        if not SNAPSHOT_PATH.exists() or SNAPSHOT_PATH.read_text() != text:
            print(
                f"{where} differs from the template. Review, then run `python -m infra.iam_snapshot`.", file=sys.stderr
            )
            return 1
        print(f"{where} matches the template")
        return 0
    SNAPSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT_PATH.write_text(text)
    print(f"wrote {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
