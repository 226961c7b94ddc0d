"""The registry journal, champion audit and trainer lease on SQLite and on the real MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btcmlops.store import AuditEntry, ChangeInProgressError, PriceStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL = "journal-test"


def _audit(to_version: int, from_version: int | None = None) -> AuditEntry:
    return AuditEntry(
        MODEL, NOW, NOW - timedelta(days=300), "tester", from_version, to_version, "why", "manual"
    )


def test_one_change_in_flight_per_model_and_a_month_closed_once(store: PriceStore) -> None:
    journal = store.journal
    first = journal.begin(
        MODEL, "month_close", {"a": 1}, actor="contest", reason="r", now=NOW, month="2024-01"
    )
    assert journal.pending(MODEL) == first
    with pytest.raises(ChangeInProgressError, match="month_close change for 2024-01"):
        journal.begin(MODEL, "promote", {}, actor="me", reason="r", now=NOW)
    other = journal.begin("another-model", "promote", {}, actor="me", reason="r", now=NOW)  # models apart
    journal.finish(first.id, [], now=NOW)
    journal.finish(first.id, [_audit(9)], now=NOW)  # a repeated finish adds nothing
    assert journal.pending(MODEL) is None
    assert journal.audit(MODEL) == []
    with pytest.raises(ChangeInProgressError, match="2024-01 is already closed"):
        journal.begin(MODEL, "month_close", {}, actor="contest", reason="r", now=NOW, month="2024-01")
    second = journal.begin(MODEL, "promote", {"to": 2}, actor="me", reason="r", now=NOW)
    journal.finish(second.id, [_audit(2, 1)], now=NOW + timedelta(seconds=1))
    assert [(e.kind, e.state) for e in journal.entries(MODEL)] == [
        ("month_close", "done"),
        ("promote", "done"),
    ]
    assert [m.month for m in journal.closed_months(MODEL)] == ["2024-01"]
    (row,) = journal.audit(MODEL)
    assert (row.from_version, row.to_version, row.change_id) == (1, 2, second.id)
    assert row.sim_time == NOW - timedelta(days=300)
    assert journal.pending("another-model") == other


def test_the_lease_is_held_by_one_trainer_until_it_expires(store: PriceStore) -> None:
    journal = store.journal
    first = journal.acquire_lease("trainer", "host:1", now=NOW, ttl_s=30)
    assert first.holder == "host:1"
    refused = journal.acquire_lease("trainer", "host:2", now=NOW + timedelta(seconds=10), ttl_s=30)
    assert refused.holder == "host:1"
    renewed = journal.acquire_lease("trainer", "host:1", now=NOW + timedelta(seconds=20), ttl_s=30)
    assert renewed.expires_at == NOW + timedelta(seconds=50)
    assert renewed.acquired_at == NOW  # renewal keeps when it was taken
    assert (
        journal.acquire_lease("trainer", "host:2", now=NOW + timedelta(seconds=49), ttl_s=30).holder
        == "host:1"
    )
    taken = journal.acquire_lease("trainer", "host:2", now=NOW + timedelta(seconds=50), ttl_s=30)
    assert (taken.holder, taken.acquired_at) == ("host:2", NOW + timedelta(seconds=50))
    journal.release_lease("trainer", "host:1")  # not the holder any more: nothing happens
    assert (
        journal.acquire_lease("trainer", "host:3", now=NOW + timedelta(seconds=51), ttl_s=30).holder
        == "host:2"
    )
    journal.release_lease("trainer", "host:2")
    assert (
        journal.acquire_lease("trainer", "host:3", now=NOW + timedelta(seconds=52), ttl_s=30).holder
        == "host:3"
    )


def test_a_plan_overtaken_by_another_change_is_dropped_and_made_again(store: PriceStore) -> None:
    journal = store.journal
    calls: list[int] = []

    def make_plan() -> tuple[dict[str, int], str]:
        calls.append(1)
        if len(calls) == 1:  # another process finishes a change between our read and our row
            other = journal.begin(MODEL, "promote", {"to": 7}, actor="other", reason="r", now=NOW)
            journal.finish(other.id, [_audit(7)], now=NOW)
        return {"attempt": len(calls)}, "mine"

    entry = journal.begin_fresh(MODEL, "promote", make_plan, actor="me", now=lambda: NOW)

    assert len(calls) == 2
    assert entry.plan == {"attempt": 2}
    assert [(e.actor, e.state) for e in journal.entries(MODEL)] == [("other", "done"), ("me", "pending")]
