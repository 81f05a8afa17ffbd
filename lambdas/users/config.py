"""The users functions' environment, parsed once at cold start."""

from __future__ import annotations

from pydantic import Field

from task_common.config import EnvironmentModel


class MeConfig(EnvironmentModel):
    """GET /me and the access log's subscriber (UserSeenFunction): the Users and Profiles tables."""

    users_table_name: str = Field(alias="USERS_TABLE_NAME", min_length=1)
    profiles_table_name: str = Field(alias="PROFILES_TABLE_NAME", min_length=1)


class ProfileChangesConfig(EnvironmentModel):
    """The Profiles stream's function: the Users table (where a subscription is remembered) and the topic."""

    users_table_name: str = Field(alias="USERS_TABLE_NAME", min_length=1)
    notifications_topic_arn: str = Field(alias="NOTIFICATIONS_TOPIC_ARN", min_length=1)
