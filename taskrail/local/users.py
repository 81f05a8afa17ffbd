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


def known_credentials() -> dict[str, LocalCredential]:
    """Access key id -> credential, for every key the local AWS endpoint accepts (read when a server starts)."""
    credentials = [STACK_SERVICE, MOTO_INTERPRETER, *(_user_credential(user) for user in USERS.values())]
    return {credential.access_key_id: credential for credential in credentials}
