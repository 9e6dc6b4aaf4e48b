"""Recovery: what a create whose answer was lost, a batch that answers 404, or a batch
adopted by mistake leaves behind, settled from what the API lists.

Nothing is ever sent twice by accident: before ``create`` the chunk is recorded as an
*intent*; right after ``create`` returns, the batch id is committed (``record_batch``). A
process killed between the two leaves an open intent, which ``recover()`` settles by
listing the batches created since the intent and adopting the one that matches, or,
when none exists, returning the requests to ``pending``. A batch is matched to its
intent by its number of requests (and creation time): ``_batches`` keeps the sizes of
open intents pairwise distinct.

``recover`` adopts only batches no other run recorded (``_claims``), and an adopted batch
(``adopted = 1``) is verified by its results before anything of it is written or it is
canceled (``adopted = 2``, or ``foreign`` and undone). A batch answering 404 is never
written off while the batch list shows it (``Lookout``); after ``lost_after`` seconds of
404s and absence its requests end ``lost`` and are not re-sent (``relook_lost`` looks
again on every drive; ``resend_lost`` re-queues them).
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchmark._errors import BatchmarkError, BatchNotFound
from batchmark.runs._backend import BatchBackend, BatchInfo
from batchmark.runs._claims import Claims
from batchmark.runs._ledger import Ledger

__all__ = [
    "ADOPT_CLOCK_TOLERANCE",
    "ADOPT_SKEW_SECONDS",
    "RETENTION_SECONDS",
    "Lookout",
    "Recovery",
]

# A batch we created may 404 for a while (SDK issue #1432). It is never written off while
# the batch list still shows it; after ``batch.lost_after_seconds`` seconds of 404s and
# absence from the list, its requests are reported lost, and not sent again by themselves.
# How far before an intent a matching batch's created_at may lie (clock skew).
ADOPT_SKEW_SECONDS = 300.0
# A batch created at most this long before its intent still counts as "after" it (the
# local and the server clock differ a little); older look-alikes are a last resort.
ADOPT_CLOCK_TOLERANCE = 1.0
# Results stay downloadable this long after a batch's creation.
RETENTION_SECONDS = 29 * 86400.0


def _now() -> float:
    return time.time()


def _adoptable(candidates: list[BatchInfo], n_requests: int, at: float) -> BatchInfo | None:
    """The batch an intent recorded at local time ``at`` most plausibly created."""
    fits = [
        b
        for b in candidates
        if b.total == n_requests and b.created_at.timestamp() >= at - ADOPT_SKEW_SECONDS
    ]
    after = [b for b in fits if b.created_at.timestamp() >= at - ADOPT_CLOCK_TOLERANCE]
    if after:
        return min(after, key=lambda b: b.created_at)
    # Created before the intent (beyond the clock tolerance): another run's, never ours.
    return None


class Lookout:
    """Where a batch is when retrieving it answers 404: the batch list, or lost.

    Counts, per batch, since when it has answered 404 in a row (per process: a resume
    starts the count again, the conservative side)."""

    def __init__(self, backend: BatchBackend, lost_after: float) -> None:
        self.backend = backend
        self.lost_after = lost_after
        self._not_found_since: dict[str, float] = {}

    def listed(self, batch: dict[str, Any]) -> BatchInfo | None:
        """The batch (a ledger row) as the batch list shows it, or None: a 404 on
        retrieve is not the end of a batch the list still holds."""
        created = datetime.fromisoformat(batch["created_at"]).timestamp()
        return self.listed_id(batch["batch_id"], created - ADOPT_SKEW_SECONDS)

    def listed_id(self, batch_id: str, since: float | None = None) -> BatchInfo | None:
        """Batch ``batch_id`` as the list shows it (created after ``since``, else within
        the results' 29 days of retention), or None."""
        if since is None:
            since = _now() - RETENTION_SECONDS
        for info in self.backend.list_recent(datetime.fromtimestamp(since, UTC)):
            if info.id == batch_id:
                return info
        return None

    def lost(self, batch_id: str) -> bool:
        """Whether a batch that answers 404 and is missing from the batch list has been
        so for ``lost_after`` seconds now (counted from the first such answer in this
        process). A batch the list shows is never lost, however long retrieve says 404:
        it exists, it may answer, and it is billed."""
        now = _now()
        first = self._not_found_since.setdefault(batch_id, now)
        return now - first >= self.lost_after

    def seen(self, batch_id: str) -> None:
        """The batch answered (or has been settled): its count of 404s starts over."""
        self._not_found_since.pop(batch_id, None)


class Recovery:
    """Records this run's batches, and settles what lost creates and lost batches left."""

    def __init__(
        self,
        ledger: Ledger,
        backend: BatchBackend,
        lookout: Lookout,
        claims: Claims | None = None,
        resend_lost: bool = False,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.lookout = lookout
        self.claims = claims
        self.resend_lost = resend_lost

    def record_batch(
        self,
        intent_id: int | None,
        info: BatchInfo,
        *,
        adopted: bool,
        token: float | None = None,
    ) -> None:
        """The intent's create made batch ``info`` (its create returned, or ``recover``
        adopted it: then ``adopted`` is 1, unverified, until its results prove it ours):
        recorded in the ledger, then as ours in the shared registry, with the claims on
        its requests (``token``: claimed together in this process)."""
        self.ledger.record_batch(intent_id, info, adopted=adopted)
        if self.claims is not None:
            self.claims.record_batch(info.id, verified=not adopted)
            if token is not None:  # claimed together in this process: one statement
                self.claims.set_batch_of(token, info.id)
            else:  # adopted after a restart: key by key
                self.claims.set_batch(self.ledger.cache_keys_of_batch(info.id), info.id)

    def recover(self) -> None:
        """Settle open intents: adopt the batch a lost create made, or un-send the chunk.

        An intent whose create was never sent (still ``open``) goes back to the queue at
        once; only one whose create may have reached the API (``sending``) is matched
        against the batch list.
        """
        intents = []
        for intent in self.ledger.open_intents():
            if intent["status"] == "open":
                self.ledger.abandon_intent(intent["id"])
            else:
                intents.append(intent)
        if not intents:
            return
        if self.claims is not None:
            # A stopped run's create may have made a batch nobody recorded: settle it
            # first, so that batch is recorded as that run's, never matched for ours.
            for owner in self.claims.stopped_sending_owners():
                self.settle_stopped(owner)
        since = min(i["created_at"] for i in intents) - ADOPT_SKEW_SECONDS
        known = self.ledger.known_batch_ids()
        if self.claims is not None:  # another run's batch is never ours
            known |= self.claims.owned_by_others()
        candidates = [
            b
            for b in self.backend.list_recent(datetime.fromtimestamp(since, UTC))
            if b.id not in known
        ]
        # Newest intent first: each create was sent after its intent was committed, so
        # the batch it made is the first one of its size created at or after the intent.
        # A same-size batch created before the intent belongs to someone else (another
        # run on the account, an earlier intent) unless only clock skew explains it.
        for intent in sorted(intents, key=lambda i: i["created_at"], reverse=True):
            match = _adoptable(candidates, intent["n_requests"], intent["created_at"])
            if match is None:
                self.ledger.abandon_intent(intent["id"])
            else:
                candidates.remove(match)
                self.record_batch(intent["id"], match, adopted=True)

    def settle_stopped(self, owner: str) -> None:
        """Settle the open intents of the stopped run ``owner`` as its resume would: adopt
        the batch a create of it made, or return the chunk to its queue. Under its lock,
        so that its own resume cannot run meanwhile; skipped while that one runs."""
        folder = Path(owner)
        try:
            fh = open(folder / ".lock", "rb")  # noqa: SIM115  (flock needs no write access)
        except OSError:
            return
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # its resume runs now
            try:
                ledger = Ledger(folder / "ledger.sqlite")
            except (sqlite3.Error, OSError, BatchmarkError):
                return  # cannot be settled from here: its claims keep holding
            claims = Claims(self.claims.path, owner) if self.claims is not None else None
            try:
                lookout = Lookout(self.backend, self.lookout.lost_after)
                Recovery(ledger, self.backend, lookout, claims).recover()
            finally:
                if claims is not None:
                    claims.close()
                ledger.close()
        finally:
            fh.close()

    def verify(self, batch_id: str) -> bool:
        """Whether an adopted batch is ours: every result line names a request the ledger
        put in it (read before anything of it is trusted). Verified batches are recorded
        as ours in the shared registry."""
        expected = self.ledger.custom_ids_of_batch(batch_id)
        seen = 0
        lines = self.backend.fetch(batch_id)
        try:
            for line in lines:
                if line.custom_id not in expected:
                    return False
                seen += 1
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        if not seen:
            return False
        self.ledger.mark_verified(batch_id)
        if self.claims is not None:
            self.claims.record_batch(batch_id)
        return True

    def disown(self, batch_id: str) -> None:
        """Undo a wrong adoption: the batch is another's (its results name requests that
        are not ours). Nothing of it was written; its intent opens again, so ``recover``
        looks for the right batch, or returns the requests to the queue."""
        self.ledger.disown_batch(batch_id)

    def relook_lost(self) -> None:
        """Look again for batches written off as lost (at the start of every drive).

        One that answers now is collected like any other batch: its requests were never
        sent again. With ``resend_lost``, the requests of one still not found go back to
        the queue: the user has said the batch is gone.
        """
        for batch in self.ledger.lost_batches():
            batch_id = batch["batch_id"]
            try:
                info: BatchInfo | None = self.backend.check(batch_id)
            except BatchNotFound:
                info = self.lookout.listed(batch)
            if info is None and not self.resend_lost:
                continue
            if info is not None:  # it exists after all: collect it as usual
                self.ledger.restore_lost_batch(batch_id, info.status)
            else:
                self.ledger.resend_lost_batch(batch_id)
            if info is not None and self.claims is not None:  # ours again, in flight
                self.claims.set_batch(self.ledger.cache_keys_of_batch(batch_id), batch_id)
        if self.resend_lost:  # requests that waited for a batch another run lost
            self.ledger.resend_lost_elsewhere()
