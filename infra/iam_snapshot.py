"""The IAM actions each role of the synthesized template is granted, as a reviewed snapshot.

``tests/infra/fixtures/iam_actions.json`` maps each role (by its construct path, e.g. ``Api/IntegrationRole``) to
the sorted actions its policies allow, each allowed (action, resource, condition) grant with resources named by
construct path (so dropping or widening a statement's resource or condition is a diff too, not only an action),
and the managed policies it has. ``tests/infra/test_iam_snapshot.py`` fails
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


def _construct_names(template: dict[str, Any]) -> dict[str, str]:
    return {logical_id: _role_name(logical_id, r) for logical_id, r in template.get("Resources", {}).items()}


def _readable(value: Any, names: dict[str, str]) -> str:
    """A resource or condition value with logical ids replaced by construct paths (stable across hash changes)."""
    if isinstance(value, list):
        return "[" + ", ".join(_readable(v, names) for v in value) + "]"
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<{names.get(arg, arg)}>"
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return f"<{names.get(logical_id, logical_id)}.{attribute}>"
        if key == "Fn::Join":
            return arg[0].join(_readable(part, names) for part in arg[1])
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_readable(v, names)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def _allowed_grants(document: dict[str, Any], names: dict[str, str]) -> set[str]:
    grants: set[str] = set()
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        condition = f" if {_readable(statement['Condition'], names)}" if "Condition" in statement else ""
        for action in _as_list(statement.get("Action", [])):
            for resource in _as_list(statement.get("Resource", "*")):
                grants.add(f"{action} on {_readable(resource, names)}{condition}")
    return grants


def _allowed_actions(document: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") == "Allow":
            actions.update(_as_list(statement.get("Action", [])))
    return actions


def role_actions(template: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Per role: ``actions`` (from AWS::IAM::Policy resources and inline policies), ``grants`` (action on
    resource, with its condition) and ``managedPolicies``."""
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    roles = {logical_id: r for logical_id, r in resources.items() if r.get("Type") == "AWS::IAM::Role"}
    names = _construct_names(template)
    actions: dict[str, set[str]] = {logical_id: set() for logical_id in roles}
    grants: dict[str, set[str]] = {logical_id: set() for logical_id in roles}
    for logical_id, role in roles.items():
        for policy in role.get("Properties", {}).get("Policies", []):
            actions[logical_id] |= _allowed_actions(policy.get("PolicyDocument", {}))
            grants[logical_id] |= _allowed_grants(policy.get("PolicyDocument", {}), names)
    for resource in resources.values():
        if resource.get("Type") != "AWS::IAM::Policy":
            continue
        properties = resource.get("Properties", {})
        for role in properties.get("Roles", []):
            ref = role.get("Ref") if isinstance(role, dict) else None
            if ref in actions:
                actions[ref] |= _allowed_actions(properties.get("PolicyDocument", {}))
                grants[ref] |= _allowed_grants(properties.get("PolicyDocument", {}), names)
    snapshot = {
        _role_name(logical_id, role): {
            "actions": sorted(actions[logical_id]),
            "grants": sorted(grants[logical_id]),
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
