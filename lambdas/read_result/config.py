"""The function's environment, parsed once at cold start."""

from __future__ import annotations

from pydantic import Field

from task_common.config import EnvironmentModel

DEFAULT_RESULT_URL_SECONDS = 300


class ReadResultConfig(EnvironmentModel):
    """The Tasks table, the results bucket, and how long a large result's link lives."""

    tasks_table_name: str = Field(alias="TASKS_TABLE_NAME", min_length=1)
    results_bucket_name: str = Field(alias="RESULTS_BUCKET_NAME", min_length=1)
    result_url_seconds: int = Field(default=DEFAULT_RESULT_URL_SECONDS, alias="RESULT_URL_SECONDS", ge=1, le=3600)
