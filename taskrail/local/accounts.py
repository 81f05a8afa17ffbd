"""Clients of the local stack signing as its users and roles (taskrail/local/users.py): what the CLI, the
console, the demo, the soak and the tests use to reach a running local stack.

Here, above :mod:`taskrail.client`, so that the client knows nothing of the local stack.
"""

from __future__ import annotations

from typing import Any

from botocore.credentials import Credentials

from taskrail.client import Endpoints, TaskrailClient
from taskrail.local.users import ROLES, USERS


def endpoints_of(info: Any) -> Endpoints:
    """The endpoints in a local stack's StackInfo (taskrail/local/stack.py)."""
    return Endpoints(
        api_url=info.api_url,
        region=info.region,
        tasks_table=info.tasks_table,
        results_bucket=info.results_bucket,
        state_machine_arn=info.state_machine_arn,
        dead_letter_queue_url=info.dead_letter_queue_url,
        websocket_url=getattr(info, "websocket_url", ""),
        state_machine_alias_arn=getattr(info, "state_machine_alias_arn", ""),
    )


def credentials_of(user_name: str) -> Credentials:
    """A local user's keys, or a new session of one of the local roles (``ci``, ``batch``: every call is a
    session of its own)."""
    if user_name in ROLES:
        session = ROLES[user_name].session()
        return Credentials(session.access_key_id, session.secret_access_key, session.session_token)
    user = USERS[user_name]
    return Credentials(user.access_key_id, user.secret_access_key)


def user_client(info: Any, user_name: str) -> TaskrailClient:
    """A client of the local stack described by ``info`` (its StackInfo), signing as ``user_name``."""
    return TaskrailClient(endpoints_of(info), credentials_of(user_name), is_local=True)


def owner_name(owner: str) -> str | None:
    """The local user or role whose requests the API stores as ``owner`` (a task's ``userId``: a user's
    principal id, a role's id; infra/constructs/api_templates/owner.vtl)."""
    for name, user in USERS.items():
        if user.principal_id == owner:
            return name
    for name, role in ROLES.items():
        if role.role_id == owner:
            return name
    return None


def owner_client(info: Any, owner: str) -> TaskrailClient | None:
    """A client signing as the owner of a task (None when no local user or role owns it)."""
    name = owner_name(owner)
    return user_client(info, name) if name is not None else None
