"""``ChampionChanges``: every change of champion outside a month close, through the same journal.

A manual promote or rollback and an alias moved by hand in the MLflow UI are registry changes like a
contest's: the intent goes into the journal first, each step (status tags, aliases) can be repeated,
and the change ends with its row in the append-only champion audit, in one transaction. A change
whose process was cut off is finished from its plan by whoever looks next once it is older than a
grace (``repair_stale``: the trainer and every inference service look every few seconds). MLflow
keeps no alias history, so the audit is the only record of who served when; the contest reads it to
score what actually served.
"""

from __future__ import annotations

import getpass
import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from btcmlops.contest.invariants import registry_problems
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry, ModelVersionInfo, VersionStatus, with_alias
from btcmlops.store import (
    AuditEntry,
    ChangeInProgressError,
    DecisionRow,
    JournalEntry,
    RegistryJournal,
    this_process,
)

logger = logging.getLogger(__name__)

MONTH_CLOSE = "month_close"
PROMOTE = "promote"
ROLLBACK = "rollback"
EXTERNAL = "external"
_SOURCE = {PROMOTE: "manual", ROLLBACK: "manual", EXTERNAL: "external"}

REPAIR_CLAIM = "change-repair"
"""Lease name prefix (``change-repair:<change id>``) a repairer claims, so that of two processes that
find the same change stale at once one rolls it forward and the other does nothing."""

StepHook = Callable[[str], None]
"""Called with a step's name at every step boundary: the seam the crash tests inject failures at."""


def no_step(_name: str) -> None:
    """The default step hook: do nothing."""


def os_actor() -> str:
    """Who is at the keyboard, for the audit: OS user at host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class ChangeRefusedError(ValueError):
    """A manual change that cannot be made (unknown version, already champion, nothing to roll back)."""


class _Decisions(Protocol):
    def list_decisions(self, registered_model: str | None = None) -> list[DecisionRow]: ...


class ChampionChanges:
    """Manual promote and rollback, external alias moves, status repair and the invariants check."""

    def __init__(
        self,
        registry: ModelRegistry,
        journal: RegistryJournal,
        decisions: _Decisions,
        *,
        now: Callable[[], datetime],
        sim_now: Callable[[], datetime | None],
        on_step: StepHook = no_step,
    ) -> None:
        self._registry = registry
        self._journal = journal
        self._decisions = decisions
        self._now = now
        self._sim_now = sim_now
        self._step = on_step

    @property
    def _name(self) -> str:
        return self._registry.model_name

    # -- by hand --------------------------------------------------------------------------------------
    def promote(self, version: int, *, reason: str, actor: str) -> AuditEntry:
        """Make ``version`` the champion now, for ``reason``; the old champion is archived.

        Raises:
            ChangeRefusedError: ``version`` does not exist, is already champion, or no reason is given.
            ChangeInProgressError: Another change (a month close) is in flight; try again after it.
        """
        versions = {v.version: v for v in self._registry.versions()}
        if version not in versions:
            known = ", ".join(f"v{v}" for v in versions) or "none"
            raise ChangeRefusedError(f"{self._name} has no version {version} (versions: {known})")
        return self._change(PROMOTE, version, reason=reason, actor=actor)

    def rollback(self, *, reason: str, actor: str) -> AuditEntry:
        """Put the previous champion back (the one the last change of champion replaced)."""
        audit = self._journal.audit(self._name)
        champion = self._registry.get_by_alias(CHAMPION)
        if not audit or champion is None or audit[-1].from_version is None:
            raise ChangeRefusedError("there is no previous champion to roll back to")
        if audit[-1].to_version != champion.version:
            raise ChangeRefusedError(
                f"'champion' is on v{champion.version} but the audit's last change is to "
                f"v{audit[-1].to_version}; run `btcmlops registry check` first"
            )
        return self._change(ROLLBACK, audit[-1].from_version, reason=reason, actor=actor)

    def history(self) -> list[AuditEntry]:
        """Every change of champion, oldest first."""
        return self._journal.audit(self._name)

    def _change(self, kind: str, to_version: int, *, reason: str, actor: str) -> AuditEntry:
        if not reason.strip():
            raise ChangeRefusedError("a reason is required (--reason TEXT): the audit keeps it")
        pending = self._journal.pending(self._name)
        if pending is not None and pending.kind != MONTH_CLOSE:
            self.carry_out(pending)  # a manual change a dead process left half-done
        self.sync_with_registry()

        def make_plan() -> tuple[dict[str, Any], str]:
            champion = self._registry.get_by_alias(CHAMPION)
            if champion is not None and champion.version == to_version:
                raise ChangeRefusedError(f"v{to_version} is already the champion")
            challenger = self._registry.get_by_alias(CHALLENGER)
            plan = self._plan(
                champion.version if champion else None, to_version, challenger.version if challenger else None
            )
            return plan, reason

        entry = self._journal.begin_fresh(self._name, kind, make_plan, actor=actor, now=self._now)
        self._step("journal.begun")
        return self.carry_out(entry)

    def _plan(self, from_version: int | None, to_version: int, challenger: int | None) -> dict[str, Any]:
        sim = self._sim_now()
        return {
            "from": from_version,
            "to": to_version,
            "challenger": challenger,
            "sim_time": sim.isoformat() if sim else None,
        }

    def carry_out(self, entry: JournalEntry) -> AuditEntry:
        """Do (or finish) a champion change's steps, then close it with its audit row."""
        return self._carry_out(entry)[0]

    def _carry_out(self, entry: JournalEntry) -> tuple[AuditEntry, bool]:
        """``carry_out``, and whether this call closed the change (False: another process had)."""
        plan = entry.plan
        to_version, from_version = plan["to"], plan["from"]
        self._registry.set_status(to_version, VersionStatus.PRODUCTION)
        self._step("registry.promoted_status")
        self._registry.set_alias(CHAMPION, to_version)
        self._step("registry.champion_alias")
        if plan["challenger"] == to_version:  # the challenger was promoted: its shadow is over
            self._registry.delete_alias(CHALLENGER)
            self._step("registry.challenger_alias_removed")
        if from_version is not None and from_version != to_version:
            self._registry.set_status(from_version, VersionStatus.ARCHIVED)
            self._step("registry.archived_status")
        row = AuditEntry(
            registered_model=self._name,
            changed_at=self._now(),
            sim_time=datetime.fromisoformat(plan["sim_time"]) if plan["sim_time"] else None,
            actor=entry.actor,
            from_version=from_version,
            to_version=to_version,
            reason=entry.reason,
            source=_SOURCE[entry.kind],
        )
        self._step("journal.finish")
        closed = self._journal.finish(entry.id, [row], now=self._now())
        if closed:
            logger.info(
                "champion v%s -> v%s (%s by %s): %s",
                from_version,
                to_version,
                entry.kind,
                entry.actor,
                entry.reason,
            )
        return row, closed

    # -- repair without a human -----------------------------------------------------------------------
    def repair_stale(self, grace_s: float, *, holder: str | None = None) -> AuditEntry | None:
        """Roll forward a change by hand pending longer than ``grace_s``: its process was cut off.

        A promote, rollback or external move's record takes a few registry calls; one still pending past
        the grace was cut off (a ``kill -9``, a request that gave up half-way) and nobody else will finish
        it, so whichever long-running process looks next (the trainer, an inference service) carries its
        plan out to the end. It is audited as the original change (its actor, reason and source), not as
        a new one. Month closes are left to the trainer's reconcile: they train, under its lease.

        Safe from several processes at once: each claims the change with a short lease in the store
        first, and a process that does not get the claim (or finds the change closed) does nothing.
        Returns the change's audit row if this call closed it.
        """
        pending = self._journal.pending(self._name)
        if pending is None or pending.kind == MONTH_CLOSE:
            return None
        now = self._now()
        age_s = (now - pending.created_at).total_seconds()
        if age_s < grace_s:
            return None  # maybe still in flight in the process that began it
        holder = holder or f"{this_process()}:{threading.get_ident()}"
        claim = f"{REPAIR_CLAIM}:{pending.id}"
        if self._journal.acquire_lease(claim, holder, now=now, ttl_s=max(grace_s, 30.0)).holder != holder:
            return None  # another process is repairing it right now
        try:
            current = self._journal.pending(self._name)
            if current is None or current.id != pending.id:
                return None  # closed by someone else between the look and the claim
            row, closed = self._carry_out(pending)
        finally:
            self._journal.release_lease(claim, holder)
        if not closed:
            return None
        logger.warning(
            "repaired change #%d (%s v%s -> v%s by %s, pending %.1f s: its process was cut off): "
            "rolled forward from its plan",
            pending.id,
            pending.kind,
            pending.plan["from"],
            pending.plan["to"],
            pending.actor,
            age_s,
        )
        return row

    # -- in line with the registry --------------------------------------------------------------------
    def sync_with_registry(self) -> AuditEntry | None:
        """Record a move of 'champion' made outside btcmlops, and bring the status tags in line.

        Returns the external change recorded, if there was one. Does nothing while another change is
        pending (its own steps move the alias).
        """
        if self._journal.pending(self._name) is not None:
            return None
        versions = self._registry.versions()
        champion = with_alias(versions, CHAMPION)
        audit = self._journal.audit(self._name)
        recorded: AuditEntry | None = None
        if champion is not None and audit and audit[-1].to_version != champion.version:
            challenger = with_alias(versions, CHALLENGER)
            plan = self._plan(
                audit[-1].to_version, champion.version, challenger.version if challenger else None
            )
            moved = f"v{audit[-1].to_version} to v{champion.version}"
            try:
                entry = self._journal.begin(
                    self._name,
                    EXTERNAL,
                    plan,
                    actor="outside btcmlops (MLflow UI or API)",
                    reason=f"'champion' moved from {moved} outside btcmlops",
                    now=self._now(),
                )
            except ChangeInProgressError:
                return None
            recorded = self.carry_out(entry)
            logger.warning("recorded an external champion change: %s", recorded.reason)
            versions = self._registry.versions()
        elif champion is None and audit:
            logger.warning(
                "'champion' was removed outside btcmlops; putting it back on v%d", audit[-1].to_version
            )
            self._registry.set_alias(CHAMPION, audit[-1].to_version)
            versions = self._registry.versions()
        self._repair_statuses(versions)
        return recorded

    def _repair_statuses(self, versions: list[ModelVersionInfo]) -> None:
        """Status follows the aliases: champion production, challenger staging, other contested archived."""
        for info in versions:
            if CHAMPION in info.aliases:
                wanted: VersionStatus | None = VersionStatus.PRODUCTION
            elif CHALLENGER in info.aliases:
                wanted = VersionStatus.STAGING
            elif info.status in (VersionStatus.PRODUCTION, VersionStatus.STAGING):
                wanted = VersionStatus.ARCHIVED
            else:
                wanted = None
            if wanted is not None and info.status != wanted:
                logger.warning(
                    "v%d had status=%s; set to %s (follows its alias)", info.version, info.status, wanted
                )
                self._registry.set_status(info.version, wanted)

    def problems(self) -> list[str]:
        """Every broken invariant of the registry, journal and decisions (empty: sound)."""
        return registry_problems(
            self._registry.versions(),
            self._journal.entries(self._name),
            self._journal.audit(self._name),
            self._decisions.list_decisions(self._name),
            self._registry.contest_runs(),
        )

    def check_and_log(self) -> list[str]:
        """Run the invariants check and log what is broken (the trainer does this after every change)."""
        problems = self.problems()
        for problem in problems:
            logger.error("registry check: %s", problem)
        return problems
