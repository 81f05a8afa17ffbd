"""Storage first, at AWS scale: on the deployed design, a burst waits in the table, not at its clients.

The API stage's throttle answers 429 before anything is stored; the lifecycle drains what is stored at its own
sustained rate. So the stage must accept more than the lifecycle sustains (`taskrail capacity`, docs/CAPACITY.md),
and no more than a new table absorbs: above its warm throughput every write of the lifecycle is throttled.
"""

from __future__ import annotations

from typing import Any

from taskrail.capacity import capacity_report
from taskrail.capacity.simulate import Burst


def test_the_api_accepts_faster_than_the_lifecycle_sustains_so_a_burst_waits_in_storage(
    template: dict[str, Any],
) -> None:
    report = capacity_report(template=template, burst=Burst(tasks=100_000, over_s=300))
    happy = report.happy
    stage = next(limit for limit in happy.limits if "stage throttle" in limit.what)
    warm = next(limit for limit in happy.limits if not limit.sustained and "warm" in limit.what)
    print(f"stage {stage.capacity:.0f}/s, sustained {happy.sustained:.0f}/s ({happy.bottleneck.what})")
    print(f"a new table's warm writes {warm.capacity:.0f}/s")

    assert happy.bottleneck.key != stage.key
    assert happy.sustained < stage.capacity <= warm.capacity
    simulation = report.simulation
    assert simulation is not None and simulation.drained
    # 333 tasks/s offered, between what the lifecycle sustains and what the stage accepts: the table holds the
    # burst, and no client is kept waiting
    print(f"peak stored backlog {simulation.peak_backlog:,.0f}, peak at clients {simulation.peak_client_backlog:,.0f}")
    assert simulation.peak_backlog > 10_000
    assert simulation.peak_client_backlog < 1_000
