"""The local stack's users: SigV4 credentials that identify a caller, as IAM users do on AWS.

Nothing on the local stack is anonymous. Each user signs requests with their access key; the local API
Gateway verifies the signature and puts the user's principal id in ``$context.identity.user``, which the
mapping templates use as the task owner. Two users exist so isolation can be shown. These keys only work
against the local stack on 127.0.0.1; they are not secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskrail.local.provision import ACCOUNT_ID


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
