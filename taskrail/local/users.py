"""The local stack's users: SigV4 credentials that identify a caller, as IAM users do on AWS.

Nothing on the local stack is anonymous. Each user signs requests with their access key; the local API
Gateway verifies the signature and puts the user's principal id in ``$context.identity.user``, which the
mapping templates use as the task owner. Two users exist so isolation can be shown. These keys only work
against the local stack on 127.0.0.1; they are not secrets. Two roles (``ci``, ``batch``) stand for assumed-role
callers: every session of a role has its own name and temporary credentials (``ROLES["ci"].session()``).
"""

from __future__ import annotations

import base64
import hmac
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from taskrail.local.region import ACCOUNT_ID


@dataclass(frozen=True)
class LocalUser:
    name: str
    access_key_id: str
    secret_access_key: str
    principal_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"


ALICE = LocalUser("alice", "AKIALOCALALICE000001", "local-alice-secret-key-not-a-secret", "AIDALOCALALICE000001")
BOB = LocalUser("bob", "AKIALOCALBOB00000002", "local-bob-secret-key-not-a-secret", "AIDALOCALBOB00000002")
USERS = {user.name: user for user in (ALICE, BOB)}
BY_ACCESS_KEY = {user.access_key_id: user for user in USERS.values()}


# -- assumed-role callers (SSO, CI, Lambda: every session its own name) ------------------------------------
# On AWS such a caller signs with temporary credentials (ASIA... key, secret, session token) from
# sts:AssumeRole, and API Gateway reports it as $context.identity.user = caller = "ROLEID:session-name",
# userArn = "arn:aws:sts::ACCOUNT:assumed-role/ROLE/session-name" (the API Gateway mapping template reference;
# IAM's aws:userid for a role is "role-id:caller-specified-role-name"). The session name differs per session
# (botocore's default is "botocore-session-<epoch>"). Locally a session's credentials are derived from the role
# and the session name, so the CLI, the tests and the local API Gateway (in other processes) agree on them
# without a shared registry: any session name works, each one is its own session.

ROLE_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")  # sts:AssumeRole RoleSessionName
SESSION_KEY_PREFIX = "ASIA"  # AWS's prefix for temporary (STS) access keys


@dataclass(frozen=True)
class LocalRole:
    name: str
    role_id: str  # the role's unique id (AROA...), what the API uses as the owner
    secret: str  # local-only: signs the derived session credentials

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{self.name}"

    def session(self, session_name: str | None = None) -> RoleSession:
        """A new session of the role, named like botocore names one (plus a random part, so that two sessions
        started in the same second differ too) unless a name is given."""
        name = session_name or f"botocore-session-{int(time.time())}-{uuid.uuid4().hex[:8]}"
        if not ROLE_SESSION_NAME.fullmatch(name):
            raise ValueError(f"invalid role session name {name!r}: 2-64 of [A-Za-z0-9_+=,.@-]")
        return RoleSession(self, name)


@dataclass(frozen=True)
class RoleSession:
    """One assumed-role session: what the local API Gateway authenticates, like a LocalUser."""

    role: LocalRole
    session_name: str

    @property
    def name(self) -> str:
        return f"{self.role.name}/{self.session_name}"

    @property
    def access_key_id(self) -> str:
        encoded = base64.b32encode(f"{self.role.name}:{self.session_name}".encode()).decode().rstrip("=")
        return SESSION_KEY_PREFIX + encoded

    @property
    def secret_access_key(self) -> str:
        return hmac.new(self.role.secret.encode(), f"secret:{self.access_key_id}".encode(), "sha256").hexdigest()

    @property
    def session_token(self) -> str:
        return hmac.new(self.role.secret.encode(), f"token:{self.access_key_id}".encode(), "sha256").hexdigest()

    @property
    def principal_id(self) -> str:
        return f"{self.role.role_id}:{self.session_name}"

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.role.name}/{self.session_name}"


CI_ROLE = LocalRole("ci", "AROALOCALCIROLE00001", "local-ci-role-secret-not-a-secret")
BATCH_ROLE = LocalRole("batch", "AROALOCALBATCHROLE02", "local-batch-role-secret-not-a-secret")
ROLES = {role.name: role for role in (CI_ROLE, BATCH_ROLE)}


def role_session(access_key_id: str) -> RoleSession | None:
    """The session an ASIA... key was derived for, if it names a local role and a valid session name."""
    if not access_key_id.startswith(SESSION_KEY_PREFIX):
        return None
    encoded = access_key_id.removeprefix(SESSION_KEY_PREFIX)
    try:
        text = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    role_name, _, session_name = text.partition(":")
    role = ROLES.get(role_name)
    if role is None or not ROLE_SESSION_NAME.fullmatch(session_name):
        return None
    session = RoleSession(role, session_name)
    return session if session.access_key_id == access_key_id else None


Caller = LocalUser | RoleSession


class _ApiCallers(Mapping[str, Caller]):
    """Access key id -> caller for the local API Gateway: the users' keys, and every role session's key."""

    def __getitem__(self, access_key_id: str) -> Caller:
        caller = BY_ACCESS_KEY.get(access_key_id) or role_session(access_key_id)
        if caller is None:
            raise KeyError(access_key_id)
        return caller

    def __iter__(self) -> Iterator[str]:
        return iter(BY_ACCESS_KEY)  # sessions are derived, not listed

    def __len__(self) -> int:
        return len(BY_ACCESS_KEY)


API_CALLERS: Mapping[str, Caller] = _ApiCallers()


# -- every credential the local AWS endpoint accepts ------------------------------------------------------
# The local AWS endpoint (moto) verifies SigV4 against this registry and nothing else. All of these are
# local-only: they exist on no AWS account, are written in this repository and in `.taskrail/local.json`, and
# prove nothing beyond "a process on this machine that read them". What keeps a *web page* out is the guard's
# Host and browser checks (taskrail/local/guard.py), not the secrecy of these keys.


@dataclass(frozen=True)
class LocalCredential:
    """An access key the local AWS endpoint accepts: a user's, or one the stack's own parts sign with.

    ``session_token``: when set, a request may carry it (``X-Amz-Security-Token``) and no other token;
    when ``None``, a request carrying any token is refused, as AWS refuses a long-term key with a token.
    """

    name: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


#: What the stack's own parts sign with against the local AWS endpoint: the provisioner, pipes, scheduler,
#: console and CLI (``stack.local_client``), the local API Gateway's integrations, and the Lambda workers
#: (which also send the session token, as Lambda's role credentials do). One credential for all of them
#: for now; a role per part comes with IAM enforcement.
STACK_SERVICE = LocalCredential("taskrail-local-stack", "testing", "testing", session_token="testing")
#: moto's Step Functions interpreter signs its service calls with these constants
#: (``moto/stepfunctions/parser/asl/utils/boto_client.py``; tests/local/test_guard.py fails if moto changes them).
MOTO_INTERPRETER = LocalCredential("moto-stepfunctions-interpreter", "ak", "sk")


def _user_credential(user: LocalUser) -> LocalCredential:
    return LocalCredential(user.name, user.access_key_id, user.secret_access_key)


class _EndpointCredentials(Mapping[str, "LocalCredential | RoleSession"]):
    """Access key id -> credential for the local AWS endpoint: the fixed keys, and every local role session's
    temporary key (derived, so not listed), with its session token, as AWS accepts a role's session anywhere."""

    def __init__(self, fixed: Mapping[str, LocalCredential]) -> None:
        self._fixed = dict(fixed)

    def __getitem__(self, access_key_id: str) -> LocalCredential | RoleSession:
        credential = self._fixed.get(access_key_id) or role_session(access_key_id)
        if credential is None:
            raise KeyError(access_key_id)
        return credential

    def __iter__(self) -> Iterator[str]:
        return iter(self._fixed)

    def __len__(self) -> int:
        return len(self._fixed)


def known_credentials() -> Mapping[str, LocalCredential | RoleSession]:
    """Access key id -> credential, for every key the local AWS endpoint accepts (read when a server starts):
    the stack's service key, moto's interpreter's, each user's, and any session of a local role."""
    credentials = [STACK_SERVICE, MOTO_INTERPRETER, *(_user_credential(user) for user in USERS.values())]
    return _EndpointCredentials({credential.access_key_id: credential for credential in credentials})
