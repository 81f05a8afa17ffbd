"""IAM policy evaluation for requests within one account, as AWS documents it, for the policy features a template uses.

The rules (IAM User Guide, "Policy evaluation logic" and "Policy evaluation for requests within a single account",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html):

1. Every request starts implicitly denied.
2. An explicit ``Deny`` in any applicable policy (identity-based or resource-based) decides: denied.
3. Within one account an ``Allow`` in *either* the identity-based policies *or* a resource-based policy is enough.
   A resource-based policy grants directly only to the principals it names (a role, a session, a service, ``*``);
   naming the account (``arn:aws:iam::ACCOUNT:root`` or ``ACCOUNT``) delegates to the identity policies instead.
4. A KMS key policy is different: without a key policy statement that allows the principal, directly or by
   naming the account (which enables IAM policies), no identity policy can grant use of the key
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html, "Default key policy").
5. Otherwise: implicitly denied.

A statement applies when its ``Action`` (or ``NotAction``), ``Resource`` (or ``NotResource``), ``Principal``
(resource policies) match and every condition holds. Actions match case-insensitively with ``*`` and ``?``;
resources case-sensitively with ``*`` and ``?`` (which span ``/`` and ``:``, so ``bucket/*`` covers nested keys
and ``function:name:*`` a qualified function ARN). Conditions: all operators of a block must hold, all keys of an
operator, and any one of a key's values ("Creating a condition with multiple keys or values",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html).
A key missing from the request makes a positive operator false and a negated one (``StringNotEquals``,
``ArnNotLike``, ...) true; ``...IfExists`` is true when the key is missing; ``Null`` tests presence
("IAM JSON policy elements: Condition operators",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
An operator this module does not know raises :class:`UnsupportedPolicy`: a policy is never half-evaluated.

Not modelled (the template uses none): permissions boundaries, session policies, SCPs/RCPs, ``NotPrincipal``
on Allow, policy variables (``${aws:username}``), cross-account requests.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Decision",
    "Outcome",
    "Policy",
    "PolicyKind",
    "Principal",
    "Request",
    "UnsupportedPolicy",
    "denial_message",
    "evaluate",
]


class UnsupportedPolicy(ValueError):
    """The policy uses an element or operator the local evaluator does not implement (fail loudly, never guess)."""


class PolicyKind(StrEnum):
    IDENTITY = "identity-based"
    RESOURCE = "resource-based"  # also a KMS key policy (with its own rule, see the module's doc)


class Outcome(StrEnum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Principal:
    """Who makes a request. ``arn``: the session ARN of a role (``arn:aws:sts::A:assumed-role/R/S``), a user's
    ARN, or a service principal's name (``events.amazonaws.com``) when ``service`` is set."""

    arn: str
    account: str
    role_arn: str | None = None  # the role an assumed-role session belongs to
    service: str | None = None

    @classmethod
    def for_service(cls, service: str, account: str) -> Principal:
        return cls(arn=service, account=account, service=service)


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str  # "dynamodb:GetItem"
    resource: str  # an ARN, or "*" for actions without a resource type
    context: Mapping[str, Any] = field(default_factory=dict)  # condition keys: "aws:SecureTransport" -> True, ...


@dataclass(frozen=True)
class Policy:
    """A policy document with its name (a template logical id or the policy's name) and kind."""

    name: str
    document: Mapping[str, Any]
    kind: PolicyKind = PolicyKind.IDENTITY
    is_key_policy: bool = False

    @property
    def statements(self) -> list[Mapping[str, Any]]:
        statements = self.document.get("Statement", [])
        return [statements] if isinstance(statements, Mapping) else list(statements)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    policy: str | None = None  # the policy whose statement decided (None for an implicit deny)
    statement: int | None = None  # its index in the policy's Statement list
    sid: str | None = None
    policy_kind: PolicyKind | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    @property
    def decided_by(self) -> str:
        if self.policy is None:
            return "no statement allows it"
        name = f"{self.policy}[{self.statement}]"
        return f"{name} (Sid {self.sid})" if self.sid else name


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * (any run, including empty) and ? (one character); nothing else is special.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case=ignore_case).match(value) is not None


def _action_matches(patterns: Iterable[Any], action: str) -> bool:
    return any(_wildcard_match(str(p), action, ignore_case=True) for p in patterns)


def _resource_matches(patterns: Iterable[Any], resource: str) -> bool:
    return any(str(p) == "*" or _wildcard_match(str(p), resource) for p in patterns)


# -- principals (resource-based policies) -----------------------------------------------------------------

_ACCOUNT_ROOT = re.compile(r"^(?:arn:aws[\w-]*:iam::(\d{12}):root|(\d{12}))$")


def _aws_principal_match(value: str, principal: Principal) -> str | None:
    if value == "*":
        return "direct"
    if principal.service is not None:
        return None
    root = _ACCOUNT_ROOT.match(value)
    if root:
        return "account" if (root.group(1) or root.group(2)) == principal.account else None
    return "direct" if value in (principal.arn, principal.role_arn) else None


def _principal_match(element: Any, principal: Principal) -> str | None:
    """``"direct"`` if ``element`` names ``principal``, ``"account"`` if it names the principal's account
    (a delegation to the identity policies), ``None`` if it does not apply."""
    if element == "*":
        return "direct"
    if not isinstance(element, Mapping):
        raise UnsupportedPolicy(f"Principal must be '*' or an object, not {element!r}")
    matches: set[str | None] = set()
    for kind, values in element.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise UnsupportedPolicy(f"unknown Principal type {kind!r}")
        for value in map(str, _as_list(values)):
            if kind == "Service":
                matches.add("direct" if value == principal.service else None)
            elif kind == "AWS":
                matches.add(_aws_principal_match(value, principal))
    return "direct" if "direct" in matches else ("account" if "account" in matches else None)


# -- conditions --------------------------------------------------------------------------------------------


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return _wildcard_match(policy, value)


def _arn_like(policy: str, value: str) -> bool:
    # ArnLike/ArnEquals compare the six ARN parts; each part may hold wildcards (IAM: "ARN condition operators").
    policy_parts, value_parts = policy.split(":", 5), value.split(":", 5)
    if len(policy_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_wildcard_match(p, v) for p, v in zip(policy_parts, value_parts, strict=True))


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


# operator -> (compare, negated)
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
}


def _context_values(context: Mapping[str, Any], key: str) -> list[str] | None:
    # condition key names are case-insensitive; values are compared as the operator says
    for name, value in context.items():
        if name.lower() == key.lower():
            if value is None:
                return None
            values = _as_list(value)
            return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
    return None


def _condition_holds(operator: str, conditions: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    set_prefix, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    base = name.removesuffix("IfExists")
    if base == "Null":
        return all(
            (_context_values(context, key) is None) == (str(expected).lower() == "true")
            for key, expected in conditions.items()
        )
    if base not in _OPERATORS or set_prefix not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"condition operator {operator!r} is not implemented by the local evaluator")
    compare, negated = _OPERATORS[base]
    for key, expected in conditions.items():
        values = _context_values(context, key)
        wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]
        if values is None:
            if if_exists or negated or set_prefix == "ForAllValues":
                continue
            return False
        if set_prefix == "ForAllValues":
            matched = all(any(compare(w, v) for w in wanted) for v in values)
        else:  # single-valued keys and ForAnyValue: one request value matching one policy value
            matched = any(compare(w, v) for w in wanted for v in values)
        if matched == negated:
            return False
    return True


def _conditions_hold(block: Any, context: Mapping[str, Any]) -> bool:
    if not block:
        return True
    if not isinstance(block, Mapping):
        raise UnsupportedPolicy(f"Condition must be an object, not {block!r}")
    return all(_condition_holds(op, conditions, context) for op, conditions in block.items())


# -- statements and the decision ---------------------------------------------------------------------------


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        action_ok = _action_matches(_as_list(statement["Action"]), request.action)
    elif "NotAction" in statement:
        action_ok = not _action_matches(_as_list(statement["NotAction"]), request.action)
    else:
        raise UnsupportedPolicy("a statement needs Action or NotAction")
    if "Resource" in statement:
        resource_ok = _resource_matches(_as_list(statement["Resource"]), request.resource)
    else:
        resource_ok = not _resource_matches(_as_list(statement.get("NotResource")), request.resource)
    return action_ok and resource_ok and _conditions_hold(statement.get("Condition"), request.context)


def _effect(statement: Mapping[str, Any]) -> str:
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"Effect must be Allow or Deny, not {effect!r}")
    return str(effect)


def _decision(policy: Policy, index: int, statement: Mapping[str, Any], outcome: Outcome) -> Decision:
    sid = statement.get("Sid")
    return Decision(outcome, policy.name, index, str(sid) if sid else None, policy.kind)


def _identity_decision(request: Request, identity: Sequence[Policy]) -> Decision | None:
    """The explicit deny or the first allow among the identity policies (None: neither)."""
    allow: Decision | None = None
    for policy in identity:
        for index, statement in enumerate(policy.statements):
            if "Principal" in statement or "NotPrincipal" in statement:
                raise UnsupportedPolicy(f"{policy.name}: an identity policy has no Principal")
            if _applies(statement, request):
                if _effect(statement) == "Deny":
                    return _decision(policy, index, statement, Outcome.EXPLICIT_DENY)
                allow = allow or _decision(policy, index, statement, Outcome.ALLOW)
    return allow


def _resource_decision(request: Request, resource: Sequence[Policy]) -> tuple[Decision | None, bool]:
    """The explicit deny or the first direct allow among the resource policies, and whether a key policy
    statement applies to the principal (directly or through its account)."""
    allow: Decision | None = None
    key_policy_applies = False
    for policy in resource:
        for index, statement in enumerate(policy.statements):
            if "NotPrincipal" in statement:
                raise UnsupportedPolicy(f"{policy.name}: NotPrincipal is not implemented by the local evaluator")
            match = _principal_match(statement.get("Principal"), request.principal)
            if match is None or not _applies(statement, request):
                continue
            if _effect(statement) == "Deny":
                return _decision(policy, index, statement, Outcome.EXPLICIT_DENY), key_policy_applies
            key_policy_applies = key_policy_applies or policy.is_key_policy
            if match == "direct":  # naming the account only delegates to the identity policies (rule 3)
                allow = allow or _decision(policy, index, statement, Outcome.ALLOW)
    return allow, key_policy_applies


def evaluate(request: Request, identity: Sequence[Policy] = (), resource: Sequence[Policy] = ()) -> Decision:
    """The decision AWS makes for ``request`` given the principal's identity policies and the resource's policies."""
    from_identity = _identity_decision(request, identity)
    if from_identity is not None and from_identity.outcome is Outcome.EXPLICIT_DENY:
        return from_identity
    from_resource, key_policy_applies = _resource_decision(request, resource)
    if from_resource is not None:
        return from_resource  # an explicit deny, or an allow that names the principal
    if any(p.is_key_policy for p in resource) and not key_policy_applies:
        return Decision(Outcome.IMPLICIT_DENY)
    if from_identity is not None and request.principal.service is None:
        return from_identity
    return Decision(Outcome.IMPLICIT_DENY)


def denial_message(request: Request, decision: Decision) -> str:
    """AWS's wording of a denial: who, what, on which resource, and why
    ("Troubleshoot access denied error messages", https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html)."""
    who = request.principal.arn
    head = f"User: {who} is not authorized to perform: {request.action} on resource: {request.resource}"
    if decision.outcome is Outcome.EXPLICIT_DENY:
        kind = decision.policy_kind or PolicyKind.IDENTITY
        article = "an" if kind is PolicyKind.IDENTITY else "a"
        return f"{head} with an explicit deny in {article} {kind} policy"
    if request.principal.service is not None:
        return f"{head} because no resource-based policy allows the {request.action} action"
    return f"{head} because no identity-based policy allows the {request.action} action"
