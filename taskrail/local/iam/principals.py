"""Local credentials for the template's roles: each principal of the stack signs as a session of its own role.

On AWS a Lambda function, a state machine, a pipe, a schedule and an API Gateway integration each get temporary
credentials of their role from STS (an ``ASIA...`` key, a secret and a session token), and IAM sees the caller as
``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``. Locally a role session's credentials are *derived* from the
role's name and the session name (as ``taskrail.local.users`` derives the ``ci``/``batch`` sessions), so the
stack process, the function workers (other processes) and the endpoint agree without a registry. These keys are
local-only, like every key of the local stack; what they carry is identity, not secrecy.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY_PREFIX", "RoleCredential", "RoleCredentials", "role_credential", "role_name_of"]

KEY_PREFIX = "ASIA"  # AWS's prefix for temporary (STS) access keys
_MARK = "taskrail-role"  # keeps these keys apart from taskrail.local.users' role sessions
_SECRET = "local-stack-role-sessions-not-a-secret"


def role_name_of(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def account_of(arn: str) -> str:
    return arn.split(":")[4]


@dataclass(frozen=True)
class RoleCredential:
    """The temporary credentials of one session of a template role (what ``sts:AssumeRole`` would hand out)."""

    role_arn: str
    session_name: str

    @property
    def name(self) -> str:
        return f"{role_name_of(self.role_arn)}/{self.session_name}"

    @property
    def access_key_id(self) -> str:
        text = f"{_MARK}:{self.role_arn}:{self.session_name}"
        return KEY_PREFIX + base64.b32encode(text.encode()).decode().rstrip("=")

    @property
    def secret_access_key(self) -> str:
        return hmac.new(_SECRET.encode(), f"secret:{self.access_key_id}".encode(), "sha256").hexdigest()

    @property
    def session_token(self) -> str:
        return hmac.new(_SECRET.encode(), f"token:{self.access_key_id}".encode(), "sha256").hexdigest()

    @property
    def arn(self) -> str:
        """The caller as IAM names it: the assumed-role session ARN."""
        return (
            f"arn:aws:sts::{account_of(self.role_arn)}:assumed-role/{role_name_of(self.role_arn)}/{self.session_name}"
        )

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for a function's execution role."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def client_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


def role_credential(role_arn: str, session_name: str) -> RoleCredential:
    return RoleCredential(role_arn, session_name)


def _decode(access_key_id: str) -> RoleCredential | None:
    if not access_key_id.startswith(KEY_PREFIX):
        return None
    encoded = access_key_id.removeprefix(KEY_PREFIX)
    try:
        text = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    mark, _, rest = text.partition(":")
    role_arn, _, session_name = rest.rpartition(":")
    if mark != _MARK or not role_arn.startswith("arn:aws:iam::") or not session_name:
        return None
    return RoleCredential(role_arn, session_name)


class RoleCredentials(Mapping[str, Any]):
    """Access key id -> credential: ``base``'s keys, and every session of any role (derived, so not listed; a
    session of a role the template does not define has no policy, so IAM denies it everything)."""

    def __init__(self, base: Mapping[str, Any]) -> None:
        self._base = base

    def __getitem__(self, access_key_id: str) -> Any:
        return _decode(access_key_id) or self._base[access_key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)
