"""``docs/quotas.json``: AWS quotas (each cited, with the date it was checked) and the model's stated assumptions.

A quota the model needs but AWS does not publish (or that could not be read) is kept with ``unknown`` set and no
value; :meth:`Quota.at` refuses it, so nothing downstream can use a figure that was never found.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from taskrail.cost.definition import ROOT

QUOTAS_PATH: Final = ROOT / "docs" / "quotas.json"

# Quota keys the model reads.
SFN_STANDARD_START: Final = "stepfunctions.standard.start_execution"
SFN_EXPRESS_START: Final = "stepfunctions.express.start_execution"
SFN_STANDARD_TRANSITIONS: Final = "stepfunctions.standard.state_transition"
SFN_EXPRESS_TRANSITIONS: Final = "stepfunctions.express.state_transition"
SFN_OPEN_EXECUTIONS: Final = "stepfunctions.standard.open_executions"
LAMBDA_CONCURRENCY: Final = "lambda.concurrent_executions"
LAMBDA_SCALING: Final = "lambda.scaling_rate"
APIGW_ACCOUNT: Final = "apigateway.account_throttle"
DDB_PARTITION_WRITES: Final = "dynamodb.partition.write_units"
DDB_TABLE_WRITES: Final = "dynamodb.on_demand.table_write_units"
DDB_WARM_WRITES: Final = "dynamodb.on_demand.new_table_warm_writes"
STREAM_READERS: Final = "dynamodb.streams.readers_per_shard"
STREAM_SHARDS: Final = "dynamodb.streams.shards"
STREAM_RETENTION: Final = "dynamodb.streams.retention"
PIPE_PARALLELIZATION: Final = "pipes.dynamodb_stream.parallelization_factor"
PIPE_BATCH_SIZE: Final = "pipes.dynamodb_stream.batch_size"
PIPE_CONCURRENCY: Final = "pipes.concurrent_executions"
EVENTS_PUT: Final = "eventbridge.put_events"
EVENTS_INVOCATIONS: Final = "eventbridge.invocations"
SQS_API: Final = "sqs.standard.api_calls"
SNS_PUBLISH: Final = "sns.publish"
REQUIRED_QUOTAS: Final = (
    SFN_STANDARD_START,
    SFN_EXPRESS_START,
    SFN_STANDARD_TRANSITIONS,
    SFN_EXPRESS_TRANSITIONS,
    SFN_OPEN_EXECUTIONS,
    LAMBDA_CONCURRENCY,
    LAMBDA_SCALING,
    APIGW_ACCOUNT,
    DDB_PARTITION_WRITES,
    DDB_TABLE_WRITES,
    DDB_WARM_WRITES,
    STREAM_READERS,
    STREAM_SHARDS,
    STREAM_RETENTION,
    PIPE_PARALLELIZATION,
    PIPE_BATCH_SIZE,
    PIPE_CONCURRENCY,
    EVENTS_PUT,
    EVENTS_INVOCATIONS,
    SQS_API,
    SNS_PUBLISH,
)
# Assumption keys.
SHARDS: Final = "stream_shards"
FUNCTION_MS: Final = "function_ms"
API_REQUESTS: Final = "api_requests_per_task"
ITEM_KB: Final = "item_kb"
REQUIRED_ASSUMPTIONS: Final = (SHARDS, FUNCTION_MS, API_REQUESTS, ITEM_KB)

DEFAULT: Final = "default"
RegionValues = dict[str, float]


class UnknownQuota(LookupError):
    """A figure the quota file marks unknown (AWS does not publish it, or it could not be read)."""


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    title: str
    read_from: str = ""  # the published source the figures were read from, when not the live page itself

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError(f"a source is an https:// page, got {url!r}")
        return url


def _per_region(values: RegionValues | None, region: str) -> float | None:
    if values is None:
        return None
    return values.get(region, values.get(DEFAULT))


class Quota(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["token_bucket", "rate", "concurrency", "scaling_rate", "limit", "range", "unlimited"]
    unit: str
    scope: str
    adjustable: bool | None
    source: Source | None
    checked: datetime.date
    value: RegionValues | None = None
    bucket: RegionValues | None = None
    refill_per_second: RegionValues | None = None
    minimum: float | None = None
    maximum: float | None = None
    period_seconds: float | None = None
    note: str = ""
    unknown: str = ""  # why there is no figure

    @model_validator(mode="after")
    def _complete(self) -> Quota:
        figures = {"value": self.value, "bucket": self.bucket, "refill_per_second": self.refill_per_second}
        if self.unknown:
            if any(v is not None for v in figures.values()) or self.minimum is not None:
                raise ValueError(f"{self.name}: an unknown quota has no figure")
            return self
        if self.source is None:
            raise ValueError(f"{self.name}: a known figure needs its source")
        needed = {
            "token_bucket": ("bucket", "refill_per_second"),
            "rate": ("value",),
            "concurrency": ("value",),
            "scaling_rate": ("value",),
            "limit": ("value",),
        }.get(self.kind, ())
        for name in needed:
            values = figures[name]
            if not values or DEFAULT not in values:
                raise ValueError(f"{self.name}: {name} needs a 'default' entry")
        if self.kind == "range" and (self.minimum is None or self.maximum is None):
            raise ValueError(f"{self.name}: a range needs minimum and maximum")
        if self.kind == "scaling_rate" and not self.period_seconds:
            raise ValueError(f"{self.name}: a scaling rate needs period_seconds")
        return self

    @property
    def known(self) -> bool:
        return not self.unknown

    def at(self, region: str, figure: str = "value") -> float:
        """The figure (``value``, ``bucket`` or ``refill_per_second``) in ``region``; raises :class:`UnknownQuota`."""
        if self.unknown:
            raise UnknownQuota(f"{self.name}: unknown ({self.unknown})")
        found = _per_region(getattr(self, figure), region)
        if found is None:
            raise UnknownQuota(f"{self.name}: no {figure}")
        return float(found)

    def cited(self) -> str:
        if self.source is None:
            return f"unknown: {self.unknown}"
        return f"{self.source.title}, {self.source.url} (checked {self.checked.isoformat()})"


class Assumption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | RegionValues
    unit: str
    basis: str

    def number(self) -> float:
        if isinstance(self.value, dict):
            raise TypeError("a per-name assumption: use .of(name)")
        return float(self.value)

    def of(self, name: str) -> float:
        if not isinstance(self.value, dict):
            return float(self.value)
        return float(self.value.get(name, self.value[DEFAULT]))


class QuotaBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str
    checked: datetime.date
    quotas: dict[str, Quota]
    assumptions: dict[str, Assumption]
    path: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _required(self) -> QuotaBook:
        missing = [k for k in REQUIRED_QUOTAS if k not in self.quotas]
        missing += [k for k in REQUIRED_ASSUMPTIONS if k not in self.assumptions]
        if missing:
            raise ValueError(f"the quota file lacks {missing}")
        return self

    def __getitem__(self, key: str) -> Quota:
        return self.quotas[key]

    def unknown(self) -> Mapping[str, Quota]:
        return {k: q for k, q in self.quotas.items() if not q.known}


def load_quotas(path: Path = QUOTAS_PATH) -> QuotaBook:
    book = QuotaBook.model_validate(json.loads(path.read_text()))
    return book.model_copy(update={"path": str(path)})
