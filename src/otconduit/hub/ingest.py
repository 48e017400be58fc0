"""One uplink message in, one outcome out: applied, duplicate, or refused (and why).

No broker here (sans-I/O towards MQTT): the subscriber hands over ``(topic, payload)``
and acknowledges the message to the broker only after :meth:`Ingest.handle` returned,
(:meth:`Ingest.handle_many` for a batch), so a hub killed mid-message gets it again and
the message id makes that harmless.
Nothing a site sends can crash the hub: every refusal is counted by reason and recorded
in ``hub_rejects``; a database error propagates (the message is not acknowledged and
comes again)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from otconduit.store import hub as hub_q
from otconduit.store.sqlite import Store
from otconduit.uplink.envelope import MAX_BYTES, Envelope, Refused, decode, parse_time

log = logging.getLogger(__name__)

MAX_SKEW_S = 300.0  # a message sent this far in the hub's future has a wrong clock


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(slots=True)
class Ingest:
    """Checks and applies uplink messages to a hub store."""

    store: Store
    sites: frozenset[str] | None  # None: any site the broker let through (no --sites)
    max_bytes: int = MAX_BYTES
    max_skew_s: float = MAX_SKEW_S
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    counts: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """One message in its own transaction."""
        return self.handle_many([(topic, payload)])[0]

    def handle_many(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Messages in arrival order, applied in one transaction (group commit: a commit
        per message is what limits a hub on PostgreSQL). Each message is still all or
        nothing: the batch commits whole or, on a database error, not at all (and the
        error propagates, so none of them is acknowledged and the broker sends them
        again)."""
        now = self.clock()
        at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        checked = [self._check(topic, payload, now) for topic, payload in items]
        outcomes: list[Outcome] = []
        rows = 0
        with self.store.transaction():
            for (topic, _), got in zip(items, checked, strict=True):
                if isinstance(got, Refused):
                    site = topic.split("/")[2] if topic.count("/") == 3 else None
                    hub_q.reject_in(
                        self.store, at=at, site=site, topic=topic, reason=got.reason,
                        detail=got.detail,
                    )  # fmt: skip
                    outcomes.append(Outcome.REFUSED)
                    continue
                env, delay_ms = got
                applied = hub_q.apply_in(
                    self.store, site=env.site, seq=env.seq, kind=env.kind,
                    sent_at=env.sent_at, rows=env.rows, received_at=at, delay_ms=delay_ms,
                )  # fmt: skip
                outcomes.append(Outcome.APPLIED if applied else Outcome.DUPLICATE)
                rows += len(env.rows) if applied else 0
        for (topic, _), got, out in zip(items, checked, outcomes, strict=True):
            self.counts[out] += 1
            if isinstance(got, Refused):
                self.counts[f"refused_{got.reason}"] += 1
                log.warning("refused %s: %s", topic[:120], got)
        self.rows += rows
        return outcomes

    def _check(self, topic: str, payload: bytes, now: datetime) -> tuple[Envelope, int] | Refused:
        """The envelope and its delay (ms), or why it is refused (no database here)."""
        try:
            env = decode(topic, payload, max_bytes=self.max_bytes)
            if self.sites is not None and env.site not in self.sites:
                raise Refused("unknown_site", f"site {env.site!r} is not in the sites file")
            sent = parse_time(env.sent_at)
            ahead = (sent - now).total_seconds()
            if ahead > self.max_skew_s:
                raise Refused(
                    "skew",
                    f"sent_at {env.sent_at} is {ahead:.0f} s ahead of the hub's clock "
                    f"(limit {self.max_skew_s:g} s): fix the site's clock (NTP)",
                )
        except Refused as exc:
            return exc
        return env, max(0, int((now - sent).total_seconds() * 1000))
