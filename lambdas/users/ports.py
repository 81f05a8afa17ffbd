"""What the users functions read and change; ``aws.py`` implements them, the unit tests fake them."""

from __future__ import annotations

from abc import ABC, abstractmethod

from users.models import ProfileRecord, UserRecord


class UserDirectory(ABC):
    """The Users and Profiles tables as GET /me uses them. Every write is conditional, so two first requests at once
    make one record: the loser's condition fails and it reads the winner's."""

    @abstractmethod
    def user(self, user_id: str) -> UserRecord | None:
        """A strongly consistent read."""

    @abstractmethod
    def profile(self, user_id: str) -> ProfileRecord | None:
        """A strongly consistent read."""

    @abstractmethod
    def create_user(self, user_id: str, username: str, *, at: str) -> UserRecord:
        """Fill the record's creation fields unless it has them (a concurrent first request, or the profile
        function's email, may have written first); the stored record."""

    @abstractmethod
    def record_login(self, user_id: str, *, at: str, unless_since: str) -> ProfileRecord:
        """Set ``lastLogin`` to ``at`` unless it is ``unless_since`` or later (creating the profile if there is
        none); the stored profile."""


class EmailSubscriptions(ABC):
    """The notifications topic's email subscriptions."""

    @abstractmethod
    def subscribe(self, email: str, filter_policy: dict[str, list[str]]) -> str:
        """A subscription (pending confirmation by its owner, as SNS requires of email) with the policy on the
        message body; its ARN."""

    @abstractmethod
    def set_filter_policy(self, subscription_arn: str, filter_policy: dict[str, list[str]]) -> None: ...

    @abstractmethod
    def unsubscribe(self, subscription_arn: str) -> None:
        """Idempotent: a subscription already gone is not an error."""


class SubscriptionRecords(ABC):
    """Which subscription is a user's (kept on the Users record, so the Profiles stream does not see it)."""

    @abstractmethod
    def subscription_of(self, user_id: str) -> tuple[str, str] | None:
        """(email, subscription ARN) or None."""

    @abstractmethod
    def remember(self, user_id: str, email: str, subscription_arn: str, *, at: str) -> None: ...

    @abstractmethod
    def forget(self, user_id: str, *, at: str) -> None: ...
