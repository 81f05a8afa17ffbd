"""The read routes' cost and each cache's break-even (taskrail.cost.reads), with the project's price file."""

from __future__ import annotations

import json

import pytest

from taskrail.cost import PRICES_PATH, load_prices
from taskrail.cost import reads as r

# What bench.read_cache measured on the local stack (finished text.stats tasks, 2026-12-01)
MEASURED = r.ItemSizes(task_item_bytes=629, index_entry_bytes=484)
CACHE_PRICES = (
    r.APIGW_CACHE_HOUR,
    r.VALKEY_GB_HOUR,
    r.VALKEY_ECPU,
    r.VALKEY_NODE_HOUR,
    r.DAX_NODE_HOUR,
    r.VPC_ENDPOINT_HOUR,
    r.NAT_HOUR,
)


@pytest.fixture(scope="module")
def costs() -> dict[tuple[str, str], r.CacheCost]:
    book = load_prices()
    return {(c.option, c.route): c for c in r.cache_costs(r.route_reads(MEASURED), book)}


def test_read_units_are_4_kb_blocks_and_half_for_an_eventually_consistent_read() -> None:
    assert r.read_units(1, consistent=True) == 1
    assert r.read_units(4096, consistent=True) == 1
    assert r.read_units(4097, consistent=True) == 2
    assert r.read_units(484 * 25, consistent=False) == 1.5  # 12,100 bytes: three blocks


def test_each_route_reads_what_its_integration_reads() -> None:
    get, listing, result = r.route_reads(MEASURED)
    assert (get.read_units, get.strongly_consistent, get.function_ms) == (1, True, 0)
    assert (listing.read_units, listing.strongly_consistent) == (1.5, False)
    assert (result.read_units, result.s3_gets) == (1, 1) and result.function_ms > 0


@pytest.mark.parametrize("route", [r.GET_TASK, r.LIST_TASKS])
@pytest.mark.parametrize("option", [r.VALKEY, r.DAX])
def test_a_function_put_in_front_of_a_direct_read_costs_more_than_the_read_it_saves(
    costs: dict[tuple[str, str], r.CacheCost], option: str, route: str
) -> None:
    cost = costs[(option, route)]
    print(
        f"{option} | {route}: adds ${r.per_million(cost.added_per_read_usd):.3f}/1M reads, saves "
        f"${r.per_million(cost.saved_per_hit_usd):.3f}/1M hits"
    )
    assert cost.added_per_read_usd > cost.saved_per_hit_usd
    assert cost.break_even_hits_per_second() is None


def test_dax_saves_nothing_on_a_strongly_consistent_read(costs: dict[tuple[str, str], r.CacheCost]) -> None:
    assert costs[(r.DAX, r.GET_TASK)].saved_per_hit_usd == 0
    assert costs[(r.DAX, r.GET_RESULT)].break_even_hits_per_second() is None


def test_break_even_is_the_fixed_charge_over_the_net_saving_per_hit(
    costs: dict[tuple[str, str], r.CacheCost],
) -> None:
    stage = costs[(r.STAGE_CACHE, r.GET_TASK)]
    # $0.02 an hour for 730 hours against $0.125 per million strongly consistent 1-unit reads
    assert stage.monthly_usd == pytest.approx(14.60)
    assert stage.break_even_hits_per_second() == pytest.approx(14.60 / 0.125e-6 / (730 * 3600))
    for (option, route), cost in costs.items():
        even = cost.break_even_hits_per_second()
        print(f"{option} | {route}: {'never pays' if even is None else f'{even:.1f} hits/s'}")


def test_only_the_stage_cache_skips_the_owner_check_on_a_hit(costs: dict[tuple[str, str], r.CacheCost]) -> None:
    skipped = sorted({option for (option, _route), c in costs.items() if c.owner_check_on_hit == r.SKIPPED})
    assert skipped == [r.STAGE_CACHE]


def test_every_cache_price_cites_its_page_and_the_day_it_was_checked() -> None:
    raw = json.loads(PRICES_PATH.read_text())["prices"]
    for key in CACHE_PRICES:
        assert raw[key]["source"].startswith("https://aws.amazon.com/"), key
        assert raw[key]["checked"] == "2026-12-01", key


def test_the_bench_section_prints_every_option_with_its_break_even_and_owner_check() -> None:
    from bench.read_cache import ReadCacheResult, read_cache_lines

    # Given what one bench run measured
    measured = ReadCacheResult(
        latency_ms={r.GET_TASK: [10.0, 12.0], r.LIST_TASKS: [40.0], r.GET_RESULT: [45.0, 50.0]},
        task_item_bytes=[627, 629],
        index_entry_bytes=[484, 484],
        changes=[(0.1, "QUEUED", 0), (0.3, "RUNNING", 0), (0.8, "SUCCEEDED", 100)],
    )
    text = read_cache_lines(measured)
    print(text)
    # Then every option and route has a row, the never-paying ones say so, the stage cache's owner check is flagged
    rows = [line for line in text.splitlines() if line.startswith(("| API Gateway", "| ElastiCache", "| DAX"))]
    assert len(rows) == 9
    assert sum("never pays" in row for row in rows) == 5
    assert all("SKIPPED" in row for row in rows if row.startswith("| API Gateway"))
    assert "| GET /tasks/{taskId} | GetItem, strongly consistent | 1 | $0.125 |" in text
    assert "changed 2 time(s)" in text


def test_the_bench_section_says_when_it_did_not_run() -> None:
    from bench.read_cache import read_cache_lines

    assert "not measured" in read_cache_lines(None)
