"""The two things the logic reads; ``aws.py`` implements them, the unit tests fake them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from read_result.models import TaskSummary


class ResultTasks(ABC):
    @abstractmethod
    def find(self, task_id: str) -> TaskSummary | None:
        """A strongly consistent read of the task; None when there is no such task."""


class ResultObjects(ABC):
    """The results bucket, read-only."""

    bucket: str

    @abstractmethod
    def read_json(self, key: str) -> Any | None:
        """The JSON document at ``key``; None when there is no such object."""

    @abstractmethod
    def presigned_get(self, key: str, *, expires_in: int) -> str:
        """A URL that GETs ``key`` without credentials for ``expires_in`` seconds (SigV4 query string)."""
