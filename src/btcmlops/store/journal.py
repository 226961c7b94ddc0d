"""The registry's memory in SQL: the change journal, the champion audit and the trainer lease.

MLflow keeps no history of its aliases and cannot change two things in one transaction, so every
registry change is written here first (a ``pending`` journal row holding the whole plan), then done
step by step, then closed with its audit rows in one transaction. A process that dies in between
leaves the pending row behind, and the trainer or an inference service finishes it from the plan (a
month close on the trainer's next round; a change by hand once it is older than a grace). The
database, not the code, keeps the two rules that make this safe: one month is closed once (unique
model + month), and one change is in flight per model at a time (unique model + ``pending_slot``,
which is 1 only while pending).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from btcmlops.calendar import Month
from btcmlops.store.schema import champion_audit, registry_journal, trainer_lease
from btcmlops.store.times import aware as _aware
from btcmlops.store.times import naive_utc as _naive_utc

PENDING = "pending"
DONE = "done"


def this_process() -> str:
    """``host:pid``: who holds a lease, or serves as a replica, as the journal and the log name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ChangeInProgressError(RuntimeError):
    """Another registry change for the same model is pending; it must finish first."""


@dataclass(frozen=True)
class JournalEntry:
    """One registry change: what was planned, by whom, and whether every step is done."""

    id: int
    registered_model: str
    kind: str
    month: str | None
    state: str
    plan: dict[str, Any]
    actor: str
    reason: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One change of champion, by a contest, by hand or from outside (the MLflow UI)."""

    registered_model: str
    changed_at: datetime
    sim_time: datetime | None
    actor: str
    from_version: int | None
    to_version: int
    reason: str
    source: str
    change_id: int | None = None
    id: int | None = None


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class RegistryJournal:
    """Journal, audit and lease on the price store's database (SQLite or MySQL/MariaDB)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- journal --------------------------------------------------------------------------------------
    def begin(
        self,
        registered_model: str,
        kind: str,
        plan: dict[str, Any],
        *,
        actor: str,
        reason: str,
        now: datetime,
        month: str | None = None,
    ) -> JournalEntry:
        """Write the intent of a change before any of its steps; return the pending entry.

        Raises:
            ChangeInProgressError: Another change for this model is pending (or the month is closed).
        """
        values = {
            "registered_model": registered_model,
            "kind": kind,
            "month": month,
            "state": PENDING,
            "pending_slot": 1,
            "plan": plan,
            "actor": actor[:255],
            "reason": reason,
            "created_at": _naive_utc(now),
        }
        try:
            with self._engine.begin() as connection:
                new_id = connection.execute(insert(registry_journal).values(values)).inserted_primary_key
        except IntegrityError:
            pending = self.pending(registered_model)
            if pending is not None:
                raise ChangeInProgressError(
                    f"a {pending.kind} change{f' for {pending.month}' if pending.month else ''} "
                    f"(#{pending.id}, by {pending.actor}) is still pending for {registered_model}"
                ) from None
            raise ChangeInProgressError(f"{month} is already closed for {registered_model}") from None
        assert new_id is not None
        entry = self._entry(int(new_id[0]))
        assert entry is not None
        return entry

    def finish(self, entry_id: int, audit: list[AuditEntry], *, now: datetime) -> bool:
        """Mark a change done and append its audit rows, in one transaction (all or nothing).

        Returns False when the change was finished before (a retried last step, or another process
        rolled it forward meanwhile): its audit rows are already there and none is added.
        """
        with self._engine.begin() as connection:
            updated = connection.execute(
                update(registry_journal)
                .where(registry_journal.c.id == entry_id, registry_journal.c.state == PENDING)
                .values(state=DONE, pending_slot=None, finished_at=_naive_utc(now))
            )
            if updated.rowcount == 0:
                return False
            for row in audit:
                connection.execute(insert(champion_audit).values(self._audit_values(row, entry_id)))
        return True

    def abandon(self, entry_id: int) -> None:
        """Drop a pending change none of whose steps has run (its plan went stale before the first)."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(registry_journal).where(
                    registry_journal.c.id == entry_id, registry_journal.c.state == PENDING
                )
            )

    def last_id(self, registered_model: str, *, before: int | None = None) -> int:
        """The newest change's id (0 if none), or the newest one older than ``before``.

        A plan records it before it is written; if the newest change older than the plan's own row is
        not the one it saw, another change landed in between and the plan is stale.
        """
        query = select(func.max(registry_journal.c.id)).where(
            registry_journal.c.registered_model == registered_model
        )
        if before is not None:
            query = query.where(registry_journal.c.id < before)
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one() or 0)

    def begin_fresh(
        self,
        registered_model: str,
        kind: str,
        make_plan: Callable[[], tuple[dict[str, Any], str]],
        *,
        actor: str,
        now: Callable[[], datetime],
        month: str | None = None,
        attempts: int = 3,
    ) -> JournalEntry:
        """Plan, then write the intent, and make sure no other change landed in between.

        ``make_plan`` reads the registry and returns the plan and its reason. A change finished by
        another process between that read and the journal row would make the plan stale (it would
        move aliases from a champion that is no longer there), so the row is dropped and the plan
        made again.

        Raises:
            ChangeInProgressError: Another change is pending, or changes kept landing meanwhile.
        """
        for _ in range(attempts):
            seen = self.last_id(registered_model)
            plan, reason = make_plan()
            entry = self.begin(
                registered_model, kind, plan, actor=actor, reason=reason, now=now(), month=month
            )
            if self.last_id(registered_model, before=entry.id) == seen:
                return entry
            self.abandon(entry.id)
        raise ChangeInProgressError(
            f"other changes of {registered_model} kept landing while planning; try again"
        )

    def pending(self, registered_model: str) -> JournalEntry | None:
        """The change in flight for ``registered_model``, if one was begun and not finished."""
        query = select(registry_journal.c.id).where(
            registry_journal.c.registered_model == registered_model, registry_journal.c.state == PENDING
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else self._entry(int(found))

    def entries(self, registered_model: str) -> list[JournalEntry]:
        """Every change of ``registered_model``, oldest first."""
        query = (
            select(registry_journal)
            .where(registry_journal.c.registered_model == registered_model)
            .order_by(registry_journal.c.id)
        )
        with self._engine.connect() as connection:
            return [self._row(row._mapping) for row in connection.execute(query)]

    def closed_months(self, registered_model: str) -> list[JournalEntry]:
        """The finished month closes, oldest month first."""
        return sorted(
            (e for e in self.entries(registered_model) if e.kind == "month_close" and e.state == DONE),
            key=lambda e: e.month or "",
        )

    def first_open_month(self, registered_model: str, first: Month) -> Month:
        """The first month not yet closed: one whose close is in flight, else the one after the newest
        closed month, else ``first`` (the month of the first candle).

        The trainer resumes here, and the pipeline's metrics count the months from here on that have
        closed in sim time as not decided yet: one rule for both.
        """
        pending = self.pending(registered_model)
        if pending is not None and pending.month is not None:
            return Month.parse(pending.month)
        closed = self.closed_months(registered_model)
        return Month.parse(closed[-1].month or "").next() if closed else first

    def _entry(self, entry_id: int) -> JournalEntry | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(registry_journal).where(registry_journal.c.id == entry_id)
            ).first()
        return None if row is None else self._row(row._mapping)

    @staticmethod
    def _row(row: Any) -> JournalEntry:
        return JournalEntry(
            id=int(row["id"]),
            registered_model=row["registered_model"],
            kind=row["kind"],
            month=row["month"],
            state=row["state"],
            plan=dict(row["plan"]),
            actor=row["actor"],
            reason=row["reason"],
            created_at=_aware(row["created_at"]),
            finished_at=_aware(row["finished_at"]),
        )

    # -- audit ----------------------------------------------------------------------------------------
    def audit(self, registered_model: str) -> list[AuditEntry]:
        """Every change of champion of ``registered_model``, oldest first (the table is append-only)."""
        query = (
            select(champion_audit)
            .where(champion_audit.c.registered_model == registered_model)
            .order_by(champion_audit.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            AuditEntry(
                id=int(row.id),
                registered_model=row.registered_model,
                changed_at=_aware(row.changed_at),
                sim_time=_aware(row.sim_time),
                actor=row.actor,
                from_version=row.from_version,
                to_version=row.to_version,
                reason=row.reason,
                source=row.source,
                change_id=row.change_id,
            )
            for row in rows
        ]

    @staticmethod
    def _audit_values(row: AuditEntry, change_id: int | None) -> dict[str, Any]:
        return {
            "registered_model": row.registered_model,
            "changed_at": _naive_utc(row.changed_at),
            "sim_time": None if row.sim_time is None else _naive_utc(row.sim_time),
            "actor": row.actor[:255],
            "from_version": row.from_version,
            "to_version": row.to_version,
            "reason": row.reason,
            "source": row.source,
            "change_id": change_id,
        }

    # -- lease ----------------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, *, now: datetime, ttl_s: float) -> Lease:
        """Take or renew the lease ``name`` for ``holder``; return whoever holds it afterwards.

        The lease is taken when it is free, expired or already ``holder``'s; otherwise the current
        holder's lease is returned unchanged (the caller compares ``holder``).
        """
        expires = _naive_utc(now + timedelta(seconds=ttl_s))
        naive_now = _naive_utc(now)
        with self._engine.begin() as connection:
            renewed = connection.execute(
                update(trainer_lease)
                .where(trainer_lease.c.name == name, trainer_lease.c.holder == holder)
                .values(expires_at=expires)
            )
            taken = renewed
            if renewed.rowcount == 0:
                taken = connection.execute(
                    update(trainer_lease)
                    .where(trainer_lease.c.name == name, trainer_lease.c.expires_at <= naive_now)
                    .values(holder=holder, expires_at=expires, acquired_at=naive_now)
                )
            if taken.rowcount == 0:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(trainer_lease).values(
                                name=name, holder=holder, acquired_at=naive_now, expires_at=expires
                            )
                        )
                except IntegrityError:
                    pass  # held by someone else, unexpired
            row = connection.execute(select(trainer_lease).where(trainer_lease.c.name == name)).one()
        return _lease_of(row)

    def lease(self, name: str) -> Lease | None:
        """Who holds the lease ``name`` (possibly expired), without taking it."""
        with self._engine.connect() as connection:
            row = connection.execute(select(trainer_lease).where(trainer_lease.c.name == name)).first()
        if row is None:
            return None
        return _lease_of(row)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean stop), if ``holder`` still holds it."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(trainer_lease).where(trainer_lease.c.name == name, trainer_lease.c.holder == holder)
            )


def _lease_of(row: Any) -> Lease:
    return Lease(row.name, row.holder, _aware(row.acquired_at), _aware(row.expires_at))
