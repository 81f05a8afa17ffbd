"""Prices: ``docs/prices.json`` (every price cites its AWS pricing page), read and checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from taskrail.cost.definition import ROOT

PRICES_PATH: Final = ROOT / "docs" / "prices.json"

# Price keys (docs/prices.json) the model uses.
SFN_TRANSITION: Final = "stepfunctions.standard.state_transition"
SFN_EXPRESS_REQUEST: Final = "stepfunctions.express.request"
SFN_EXPRESS_GB_SECOND: Final = "stepfunctions.express.duration_gb_second"
LAMBDA_REQUEST: Final = "lambda.request"
LAMBDA_GB_SECOND: Final = "lambda.duration_gb_second.{architecture}"
DDB_WRITE: Final = "dynamodb.on_demand.write_request_unit"
DDB_READ: Final = "dynamodb.on_demand.read_request_unit"
S3_PUT: Final = "s3.standard.put_copy_post_list_request"
S3_GET: Final = "s3.standard.get_and_other_request"
SNS_PUBLISH: Final = "sns.standard.publish_request"
EVENTS_PUT: Final = "eventbridge.custom_event"
PIPES_REQUEST: Final = "eventbridge.pipes.request"
SQS_REQUEST: Final = "sqs.standard.request"
APIGW_REQUEST: Final = "apigateway.rest.request"
LOGS_GB: Final = "cloudwatch.logs.ingestion_gb"
EXPRESS_DURATION_STEP: Final = "stepfunctions.express.duration_increment_ms"
EXPRESS_MEMORY_STEP: Final = "stepfunctions.express.memory_increment_mb"
LAMBDA_DURATION_STEP: Final = "lambda.duration_increment_ms"
DDB_WRITE_KB: Final = "dynamodb.write_unit_kb"
DDB_READ_KB: Final = "dynamodb.read_unit_kb"
REQUIRED_PRICES: Final = (
    SFN_TRANSITION,
    SFN_EXPRESS_REQUEST,
    SFN_EXPRESS_GB_SECOND,
    LAMBDA_REQUEST,
    LAMBDA_GB_SECOND.format(architecture="arm64"),
    LAMBDA_GB_SECOND.format(architecture="x86_64"),
    DDB_WRITE,
    DDB_READ,
    S3_PUT,
    S3_GET,
    SNS_PUBLISH,
    EVENTS_PUT,
    PIPES_REQUEST,
    SQS_REQUEST,
    APIGW_REQUEST,
    LOGS_GB,
)
REQUIRED_RULES: Final = (EXPRESS_DURATION_STEP, EXPRESS_MEMORY_STEP, LAMBDA_DURATION_STEP, DDB_WRITE_KB, DDB_READ_KB)

# --------------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    per: int
    unit: str
    source: str
    note: str = ""

    @property
    def each(self) -> float:
        """Dollars for one unit."""
        return self.usd / self.per


@dataclass(frozen=True)
class BillingRule:
    key: str
    value: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class PriceBook:
    region: str
    currency: str
    as_of: str
    prices: Mapping[str, Price]
    billing: Mapping[str, BillingRule]
    path: str = ""

    def each(self, key: str) -> float:
        return self.prices[key].each

    def rule(self, key: str) -> float:
        return self.billing[key].value


def _source(key: str, entry: Mapping[str, Any]) -> str:
    source = entry.get("source")
    if not isinstance(source, str) or not source.startswith("https://"):
        raise ValueError(f"{key}: every price and billing rule needs a source URL (https://…), got {source!r}")
    return source


def parse_prices(data: Mapping[str, Any], path: str = "") -> PriceBook:
    """A :class:`PriceBook` from the decoded price file; raises ValueError for a missing price or source."""
    prices: dict[str, Price] = {}
    for key, entry in data.get("prices", {}).items():
        usd, per = entry.get("usd"), entry.get("per")
        if not isinstance(usd, int | float) or usd < 0 or not isinstance(per, int) or per <= 0:
            raise ValueError(f"{key}: needs a non-negative 'usd' and a positive integer 'per'")
        prices[key] = Price(
            key, float(usd), per, str(entry.get("unit", "")), _source(key, entry), entry.get("note", "")
        )
    billing: dict[str, BillingRule] = {}
    for key, entry in data.get("billing", {}).items():
        value = entry.get("value")
        if not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{key}: needs a positive 'value'")
        billing[key] = BillingRule(key, float(value), _source(key, entry), entry.get("note", ""))
    missing = [k for k in REQUIRED_PRICES if k not in prices] + [k for k in REQUIRED_RULES if k not in billing]
    if missing:
        raise ValueError(f"the price file lacks {missing}")
    return PriceBook(str(data["region"]), str(data["currency"]), str(data["as_of"]), prices, billing, path)


def load_prices(path: Path = PRICES_PATH) -> PriceBook:
    return parse_prices(json.loads(path.read_text()), str(path))
