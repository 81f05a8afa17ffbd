"""The two things the logic needs: the owner's connections, and a post to one connection. ``aws.py`` implements
them, the unit tests fake them."""

from __future__ import annotations

from abc import ABC, abstractmethod

from push_progress.models import Connection


class ConnectionGone(Exception):  # after API Gateway's GoneException
    """The connection is closed (API Gateway answered 410 GoneException): its row can go."""


class PostFailed(Exception):
    """The message did not reach the connection (a throttle, a timeout, an error): the connection may be alive."""


class Connections(ABC):
    @abstractmethod
    def of_owner(self, owner: str) -> list[Connection]:
        """Every connection of ``owner`` (the owner index), subscribed or not."""

    @abstractmethod
    def delete(self, connection_id: str) -> None:
        """Removes the row (no error if it is gone already)."""


class ConnectionPoster(ABC):
    @abstractmethod
    def post(self, connection_id: str, data: bytes) -> None:
        """Sends ``data`` to the connection; raises ConnectionGone or PostFailed."""
