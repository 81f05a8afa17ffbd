"""What a cache in front of the read routes would save, and what each cache costs (issue 16 §3).

The read routes and what one read costs on AWS today, from the item sizes and the price file:

* ``GET /tasks/{taskId}``: API Gateway's GetItem integration, strongly consistent (``get_task.request.vtl``): read
  units on the whole item, 4 KB blocks;
* ``GET /tasks``: a Query of the owner index, eventually consistent (a GSI has no other kind): half a unit per 4 KB
  of the index entries read, a page of :data:`LIST_PAGE`;
* ``GET /tasks/{taskId}/result``: the result function: its invocation, a strongly consistent GetItem (billed on the
  whole item: a ProjectionExpression does not make a read cheaper) and an S3 GetObject.

Each cache option is a fixed monthly charge (the cache and the network a function in a VPC needs), a charge added
to every read (a function in the read path where there is none, the cache's own requests), and what a cache hit
saves. A cache pays when the hits a month times the saving exceed the fixed charge plus the added charges; it never
pays when what it adds to each read is more than a hit saves. Nothing here measures: the sizes come from the caller
(``bench.read_cache`` reads them from real items of the local stack), the prices from ``docs/prices.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from taskrail.cost.model import Assumptions
from taskrail.cost.prices import APIGW_REQUEST, DDB_READ, LAMBDA_GB_SECOND, LAMBDA_REQUEST, S3_GET, PriceBook

HOURS_PER_MONTH: Final = 730  # the month of AWS's pricing pages
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600
PER_READS: Final = 1_000_000
LIST_PAGE: Final = 25  # list_tasks.request.vtl's Limit when the caller gives none
READ_UNIT_BYTES: Final = 4096
RESULT_FUNCTION_MB: Final = 256  # ReadResultFunction (infra/constructs/api.py READ_RESULT)
ARCHITECTURE: Final = "arm64"
AVAILABILITY_ZONES: Final = 2  # the fewest a highly available VPC placement spans
CACHE_CALL_MS: Final = 1.0  # a GET to an in-VPC cache, in the function's billed duration

APIGW_CACHE_HOUR: Final = "apigateway.cache.0_5gb.hour"
VALKEY_GB_HOUR: Final = "elasticache.serverless.valkey.data_gb_hour"
VALKEY_ECPU: Final = "elasticache.serverless.valkey.ecpu"
VALKEY_MIN_GB: Final = "elasticache.serverless.valkey.minimum_data_gb"
VALKEY_NODE_HOUR: Final = "elasticache.node.valkey.cache_t4g_micro.hour"
DAX_NODE_HOUR: Final = "dax.node.t3_small.hour"
DAX_NODES: Final = "dax.recommended_nodes"
VPC_ENDPOINT_HOUR: Final = "vpc.interface_endpoint.hour_per_az"
NAT_HOUR: Final = "vpc.nat_gateway.hour"

GET_TASK: Final = "GET /tasks/{taskId}"
LIST_TASKS: Final = "GET /tasks"
GET_RESULT: Final = "GET /tasks/{taskId}/result"

STAGE_CACHE: Final = "API Gateway stage cache (0.5 GB)"
VALKEY: Final = "ElastiCache Serverless Valkey (minimum)"
DAX: Final = "DAX (3 x dax.t3.small)"
SKIPPED: Final = "skipped"


def read_units(size_bytes: int, *, consistent: bool) -> float:
    """DynamoDB's read request units for reading ``size_bytes`` (one item, or the sum a Query read)."""
    blocks = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(blocks) if consistent else blocks / 2


@dataclass(frozen=True)
class ItemSizes:
    """DynamoDB sizes ("Item sizes and formats") of what the read routes read."""

    task_item_bytes: int  # one task's item in the table
    index_entry_bytes: int  # one task's entry in the owner index (keys + USER_INDEX_ATTRIBUTES)
    page: int = LIST_PAGE


@dataclass(frozen=True)
class RouteRead:
    """One read of one route on AWS today: its DynamoDB read, S3 reads and function."""

    route: str
    read: str
    read_units: float
    strongly_consistent: bool
    s3_gets: int = 0
    function_ms: float = 0.0  # 0: no function in the path (a direct integration)
    avoidable_ms: float = 0.0  # of function_ms, the SDK calls a hit inside the function would skip
    function_mb: int = RESULT_FUNCTION_MB

    def dynamodb_usd(self, prices: PriceBook) -> float:
        return self.read_units * prices.each(DDB_READ)

    def s3_usd(self, prices: PriceBook) -> float:
        return self.s3_gets * prices.each(S3_GET)

    def function_usd(self, prices: PriceBook, ms: float | None = None) -> float:
        duration = self.function_ms if ms is None else ms
        if duration <= 0:
            return 0.0
        gb_seconds = math.ceil(duration) / 1000 * self.function_mb / 1024
        return prices.each(LAMBDA_REQUEST) + gb_seconds * prices.each(
            LAMBDA_GB_SECOND.format(architecture=ARCHITECTURE)
        )

    def backend_usd(self, prices: PriceBook) -> float:
        """What serving this read from API Gateway's cache avoids: everything behind the method."""
        return self.dynamodb_usd(prices) + self.s3_usd(prices) + self.function_usd(prices)


def route_reads(sizes: ItemSizes, assumptions: Assumptions | None = None) -> tuple[RouteRead, ...]:
    """The three read routes, from the sizes of what they read."""
    latency = assumptions or Assumptions()
    ddb_ms, s3_ms = latency.service_ms("dynamodb"), latency.service_ms("s3")
    return (
        RouteRead(GET_TASK, "GetItem, strongly consistent", read_units(sizes.task_item_bytes, consistent=True), True),
        RouteRead(
            LIST_TASKS,
            f"Query of the owner index, {sizes.page} entries, eventually consistent",
            read_units(sizes.index_entry_bytes * sizes.page, consistent=False),
            False,
        ),
        RouteRead(
            GET_RESULT,
            "function: GetItem (strongly consistent) + S3 GetObject",
            read_units(sizes.task_item_bytes, consistent=True),
            True,
            s3_gets=1,
            function_ms=latency.thin_handler_ms + ddb_ms + s3_ms,
            avoidable_ms=ddb_ms + s3_ms,
        ),
    )


@dataclass(frozen=True)
class CacheCost:
    """One cache option in front of one route: per month, per read, per hit (dollars)."""

    option: str
    route: str
    monthly_usd: float  # the cache and its network, whatever the traffic
    added_per_read_usd: float  # every read, hit or miss
    saved_per_hit_usd: float
    owner_check_on_hit: str  # where a hit's owner check happens ("skipped": a cross-user read)
    note: str = ""

    @property
    def net_per_hit_usd(self) -> float:
        return self.saved_per_hit_usd - self.added_per_read_usd

    def break_even_hits_per_second(self) -> float | None:
        """The sustained cache hits per second (every read a hit: the best case) at which the option costs what it
        saves; None when a hit saves less than the option adds to each read (it never pays)."""
        if self.net_per_hit_usd <= 0:
            return None
        return self.monthly_usd / self.net_per_hit_usd / SECONDS_PER_MONTH


def vpc_monthly_usd(prices: PriceBook, zones: int = AVAILABILITY_ZONES) -> float:
    """A function in a VPC: S3 and DynamoDB through gateway endpoints (free), X-Ray (the functions trace) through
    an interface endpoint in each zone, the cheapest way out to an AWS API that has no gateway endpoint."""
    return zones * prices.each(VPC_ENDPOINT_HOUR) * HOURS_PER_MONTH


def _new_function_usd(route: RouteRead, prices: PriceBook, assumptions: Assumptions) -> float:
    """A function put in the read path where there is none: its invocation, the read (a miss) or the cache call."""
    if route.function_ms > 0:
        return 0.0
    thin = RouteRead(route.route, route.read, 0, False, function_ms=assumptions.thin_handler_ms + CACHE_CALL_MS)
    return thin.function_usd(prices)


def cache_costs(
    routes: tuple[RouteRead, ...], prices: PriceBook, assumptions: Assumptions | None = None
) -> list[CacheCost]:
    """Every option in front of every route."""
    latency = assumptions or Assumptions()
    vpc = vpc_monthly_usd(prices)
    stage = prices.each(APIGW_CACHE_HOUR) * HOURS_PER_MONTH
    valkey = prices.each(VALKEY_GB_HOUR) * prices.rule(VALKEY_MIN_GB) * HOURS_PER_MONTH + vpc
    dax = prices.each(DAX_NODE_HOUR) * prices.rule(DAX_NODES) * HOURS_PER_MONTH + vpc
    costs: list[CacheCost] = []
    for route in routes:
        costs.append(
            CacheCost(
                STAGE_CACHE,
                route.route,
                stage,
                0.0,
                route.backend_usd(prices),
                owner_check_on_hit=SKIPPED,
                note="a hit is still an API request",
            )
        )
        in_function = route.dynamodb_usd(prices) + route.s3_usd(prices)
        skipped = route.function_usd(prices) - route.function_usd(prices, route.function_ms - route.avoidable_ms)
        costs.append(
            CacheCost(
                VALKEY,
                route.route,
                valkey,
                _new_function_usd(route, prices, latency) + prices.each(VALKEY_ECPU),
                in_function + max(0.0, skipped),
                owner_check_on_hit="in the function (key: taskId and owner)",
                note="a function in a VPC",
            )
        )
        # DAX answers a strongly consistent read by passing it to DynamoDB ("DAX and DynamoDB consistency models").
        dax_saves = 0.0 if route.strongly_consistent else route.dynamodb_usd(prices)
        costs.append(
            CacheCost(
                DAX,
                route.route,
                dax,
                _new_function_usd(route, prices, latency),
                dax_saves,
                owner_check_on_hit="in the function",
                note="strongly consistent reads pass through" if route.strongly_consistent else "query cache",
            )
        )
    return costs


def per_million(usd: float) -> float:
    return usd * PER_READS


def api_request_usd(prices: PriceBook) -> float:
    """What every read pays API Gateway, cached or not (for scale)."""
    return prices.each(APIGW_REQUEST)


def summary(costs: list[CacheCost]) -> Mapping[str, float | None]:
    """``"option | route"`` -> break-even hits per second (None: never pays)."""
    return {f"{c.option} | {c.route}": c.break_even_hits_per_second() for c in costs}
