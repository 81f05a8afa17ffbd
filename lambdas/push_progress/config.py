"""The function's environment, parsed once at cold start."""

from __future__ import annotations

from pydantic import Field

from task_common.config import EnvironmentModel
from task_common.contract import CONNECTIONS_OWNER_INDEX_ENV

# A post is API Gateway accepting one message for one connection, normally milliseconds: a client that is slow to
# read does not slow it, and one that is gone answers 410 at once. The budget bounds a sick endpoint, so that one
# connection cannot hold a batch (and the shard behind it) for long; a post is not retried (the next message
# carries the whole state, and clients poll as a fallback).
DEFAULT_POST_TIMEOUT_SECONDS = 1.0
# Posts of one record run side by side, at most this many at once.
DEFAULT_MAX_PARALLEL_POSTS = 8


class PushProgressConfig(EnvironmentModel):
    """The Connections table and its index by owner, the API stage's management endpoint, the post budget."""

    connections_table_name: str = Field(alias="CONNECTIONS_TABLE_NAME", min_length=1)
    connections_owner_index_name: str = Field(alias=CONNECTIONS_OWNER_INDEX_ENV, min_length=1)
    websocket_callback_url: str = Field(alias="WEBSOCKET_CALLBACK_URL", min_length=1)
    post_timeout_seconds: float = Field(default=DEFAULT_POST_TIMEOUT_SECONDS, alias="POST_TIMEOUT_SECONDS", gt=0, le=10)
    max_parallel_posts: int = Field(default=DEFAULT_MAX_PARALLEL_POSTS, alias="MAX_PARALLEL_POSTS", ge=1, le=64)
