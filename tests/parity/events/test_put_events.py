"""EventBridge PutEvents parity: the request limits and per-entry errors a caller (taskrail's outcome events, a
user's next rule) meets on AWS, each a request and the answer AWS gives it, with its evidence.

Evidence:
- [PUT] PutEvents, EventBridge API Reference (https://docs.aws.amazon.com/eventbridge/latest/APIReference/
  API_PutEvents.html): ``Entries`` "Minimum number of 1 item. Maximum number of 10 items"; ``FailedEntryCount``
  "The number of failed entries"; each failed entry has ``ErrorCode``/``ErrorMessage`` and the others an ``EventId``
  (entries are put independently); error ``MalformedDetail`` for Detail that is not valid JSON.
- [SIZE] "Calculating Amazon EventBridge PutEvents event entry size", EventBridge User Guide (eb-putevent-size.html):
  the entries' total size counts ``Time`` as 14 bytes and Source, DetailType, Detail and each Resources entry as
  their UTF-8 bytes; the limit is 1 MiB today (raised from 256 KB: "the current AWS PutEvents 1 MiB payload limit",
  DataDog/dd-trace-js#9038, 2026-06, citing eb-putevents.html; Shopify's EventBridge changelog: "EventBridge's 1 MiB
  entry cap"); over it AWS answers ``ValidationException`` "Total size of the entries in the request is over the
  limit." (recorded by a user against AWS: awslabs/aws-service-catalog-puppet#563).
"""

from __future__ import annotations

import json
from typing import Any

from taskrail.local.services.events import MAX_PUT_EVENTS_BYTES, put_events_entry_size
from tests.parity.endpoint import call

SOURCE, DETAIL_TYPE = "parity.test", "Parity"


def _entry(detail: str = '{"a": 1}', **extra: Any) -> dict[str, Any]:
    return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": detail, **extra}


def _sized(total: int) -> dict[str, Any]:
    """One entry of exactly ``total`` bytes as EventBridge counts them."""
    overhead = put_events_entry_size(_entry(json.dumps({"p": ""})))
    entry = _entry(json.dumps({"p": "x" * (total - overhead)}))
    assert put_events_entry_size(entry) == total
    return entry


def test_ten_entries_are_put_eleven_are_refused(events: Any) -> None:
    ten = call(events.put_events, Entries=[_entry() for _ in range(10)])
    eleven = call(events.put_events, Entries=[_entry() for _ in range(11)])
    none = call(events.put_events, Entries=[])
    print(ten.line("events PutEvents 10 entries [PUT]"))
    print(eleven.line("events PutEvents 11 entries [PUT]"))
    print(none.line("events PutEvents no entry [PUT]"))
    assert (ten.status, ten.body["FailedEntryCount"], len(ten.body["Entries"])) == (200, 0, 10)
    assert (eleven.status, eleven.code) == (400, "ValidationException")
    assert (none.status, none.code) == (400, "ValidationException")


def test_entries_up_to_the_total_size_limit_are_put_one_byte_more_is_refused(events: Any) -> None:
    half = MAX_PUT_EVENTS_BYTES // 2
    fits = call(events.put_events, Entries=[_sized(half), _sized(MAX_PUT_EVENTS_BYTES - half)])
    over = call(events.put_events, Entries=[_sized(half), _sized(MAX_PUT_EVENTS_BYTES - half + 1)])
    print(fits.line("events PutEvents entries totalling 1 MiB [SIZE]"))
    print(over.line("events PutEvents entries totalling 1 MiB + 1 byte [SIZE]"))
    assert (fits.status, fits.body["FailedEntryCount"]) == (200, 0)
    assert (over.status, over.code, over.message) == (
        400,
        "ValidationException",
        "Total size of the entries in the request is over the limit.",
    )


def test_time_and_resources_count_toward_the_size(events: Any) -> None:
    base = _sized(MAX_PUT_EVENTS_BYTES - 14)
    with_time = call(events.put_events, Entries=[base | {"Time": 1_700_000_000}])
    with_resource = call(events.put_events, Entries=[base | {"Time": 1_700_000_000, "Resources": ["r"]}])
    print(with_time.line("events PutEvents 1 MiB with Time [SIZE]"))
    print(with_resource.line("events PutEvents 1 MiB + a 1-byte resource [SIZE]"))
    assert with_time.status == 200
    assert (with_resource.status, with_resource.code) == (400, "ValidationException")


def test_a_bad_entry_fails_alone_and_is_counted(events: Any) -> None:
    answer = call(
        events.put_events,
        Entries=[_entry(), _entry("{not json"), {"DetailType": DETAIL_TYPE, "Detail": "{}"}, _entry()],
    )
    print(answer.line("events PutEvents a malformed and a sourceless entry among good ones [PUT]"))
    codes = [e.get("ErrorCode") for e in answer.body["Entries"]]
    assert (answer.status, answer.body["FailedEntryCount"]) == (200, 2)
    assert codes == [None, "MalformedDetail", "InvalidArgument", None]
    assert all("EventId" in e for e, c in zip(answer.body["Entries"], codes, strict=True) if c is None)
