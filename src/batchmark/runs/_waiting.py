"""Requests another run has in flight: claimed before they are sent, waited for after.

Across runs (``_claims``): a chunk's cache keys are claimed before its intent; keys
another run holds go to ``waiting`` instead of being sent. A waiting request ends when
that run's answer reaches the response cache; when the other run stopped, its batch is
read here (``_harvest``) or its lost create settled as its resume would
(``Recovery.settle_stopped``); when its batch was lost, the request ends ``lost`` too.
Waiting needs the cache (the answers arrive there), so no cache, no waiting.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from batchmark._errors import BatchNotFound, ResultsStreamError
from batchmark.runs._backend import BatchBackend
from batchmark.runs._claims import Claim, Claims, owner_alive, owner_sending
from batchmark.runs._ledger import Ledger
from batchmark.runs._ledger_reads import custom_ids_in_batch
from batchmark.runs._recovery import ADOPT_SKEW_SECONDS, Recovery
from batchmark.runs._states import BatchStatus, ResponseStatus
from batchmark.runs._store import ResponseCache

__all__ = ["Waiting"]


class Waiting:
    """Claims a chunk's contents before it is sent; settles requests waiting for others."""

    def __init__(
        self,
        ledger: Ledger,
        backend: BatchBackend,
        recovery: Recovery,
        cache: ResponseCache | None = None,
        claims: Claims | None = None,
        resend_lost: bool = False,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.recovery = recovery
        self.lookout = recovery.lookout
        self.cache = cache
        self.claims = claims
        self.resend_lost = resend_lost

    def claim(self, seqs: list[int]) -> tuple[list[int], float | None]:
        """Claim the chunk's request contents; returns the seqs to send now.

        A request whose cache key another run has in flight (under the same results root
        and endpoint) goes to ``waiting``: its answer is taken once that run collects it
        (``check``). A key this run wins is looked up in the cache once more: the answer
        may have arrived since the request was written (another run collected it, then
        let go of it; owners merge answers before they release claims).
        """
        if self.claims is None or self.cache is None or not seqs:
            return seqs, None  # no cache: nothing to wait for (``--no-cache`` pays again)
        keys = self.ledger.request_keys(seqs)
        held, token = self.claims.claim(
            ((keys[q][0], keys[q][1]) for q in seqs), take_lost=self.resend_lost
        )
        won = [q for q in seqs if keys[q][0] not in held]
        hits = self.cache.get_many([keys[q][0] for q in won])
        waiting = [q for q in seqs if keys[q][0] in held]
        if waiting:
            self.ledger.mark_waiting(waiting)
        if hits:
            cached = [(q, keys[q][0], keys[q][2]) for q in won if keys[q][0] in hits]
            self.ledger.answer_from_cache(cached, hits)
            self.claims.release(list(hits))
        return [q for q in won if keys[q][0] not in hits], token

    def check(self) -> bool:
        """Settle requests waiting for another run's answer; True if any settled.

        In this order, so that a claim released right after its answer was cached is
        never taken for a loss: who holds the keys now, then the cache. A cached answer
        makes the request done (``cached``); a key nobody holds any more, or held by a
        run that stopped before sending it, goes back to the queue; a key in the batch
        of a run that stopped (``--detach``, killed) is read from that batch here; a key
        whose batch the other run reported lost ends ``lost`` here too (never re-sent by
        itself); a run that stopped in the middle of a create is settled first
        (``settle_stopped``), as its own resume would.
        """
        if self.claims is None or self.cache is None:
            return False
        rows = self.ledger.waiting_requests()
        if not rows:
            return False
        keys = [k for _, k, _ in rows]
        holders = self.claims.holders(keys)
        hits = self.cache.get_many(keys)
        cached: list[tuple[int, str, int]] = []
        back: list[int] = []
        lost: list[tuple[int, int, str]] = []
        harvest: dict[str, tuple[Claim, dict[str, str]]] = {}  # batch id -> its claims
        stopped: set[str] = set()
        alive: dict[str, bool] = {}
        shared = self.claims.shared_batches
        for seq, key, attempts in rows:
            if key in hits:
                cached.append((seq, key, attempts))
                continue
            claim = holders.get(key)
            if claim is None:
                back.append(seq)
                continue
            if claim.lost:
                if self.resend_lost or not Path(claim.owner).is_dir():
                    back.append(seq)  # ``claim`` takes it over and sends it
                else:
                    message = (
                        f"the run {claim.owner} had this request in flight and lost its "
                        "batch (404, missing from the batch list); not sent again here "
                        "either: `batchmark resume RUN --resend-lost` sends it"
                    )
                    lost.append((seq, attempts, message))
                continue
            if claim.owner not in alive:
                alive[claim.owner] = owner_alive(claim.owner)
            if alive[claim.owner]:
                continue
            if claim.batch_id is not None and shared:
                harvest.setdefault(claim.batch_id, (claim, {}))[1][claim.custom_id] = key
            elif shared and owner_sending(claim.owner):
                stopped.add(claim.owner)
            else:
                back.append(seq)  # stopped before sending: ``claim`` takes it over
        if cached:
            self.ledger.answer_from_cache(cached, hits)
        self.ledger.settle_waiting(back, lost)
        for owner in stopped:
            self.recovery.settle_stopped(owner)
        for batch_id, (claim, wanted) in harvest.items():
            self._harvest(batch_id, claim, wanted)
        return bool(cached or back or lost)

    def _harvest(self, batch_id: str, claim: Claim, wanted: dict[str, str]) -> None:
        """Read the answers of a stopped run's batch into the cache (once it ended).

        ``wanted`` maps that run's custom_ids to cache keys. A batch the stopped run did
        not record as its own (adopted, unverified) is first checked against that run's
        ledger, like ``Recovery.verify``. Answers that did not succeed (or never came)
        drop the stopped run's claims, so the keys are sent again here.
        """
        assert self.claims is not None and self.cache is not None
        try:
            info = self.backend.check(batch_id)
        except BatchNotFound:
            listed = self.lookout.listed_id(batch_id, claim.claimed_at - ADOPT_SKEW_SECONDS)
            if listed is None and self.lookout.lost(batch_id):
                self.claims.drop_foreign(batch_id, list(wanted.values()))
            return
        self.lookout.seen(batch_id)
        if info.status != BatchStatus.ENDED:
            return
        expected = None
        if batch_id not in self.claims.owned_by(claim.owner):
            expected = custom_ids_in_batch(Path(claim.owner) / "ledger.sqlite", batch_id)
            if expected is None:
                return  # its ledger cannot be read now: trust nothing, drop nothing
        answers: list[tuple[str, bytes]] = []
        try:
            if not info.archived:
                lines = self.backend.fetch(batch_id)
                try:
                    for line in lines:
                        if expected is not None and line.custom_id not in expected:
                            answers = []  # not the stopped run's batch: trust none of it
                            break
                        key = wanted.get(line.custom_id)
                        if key is not None and line.status == ResponseStatus.SUCCEEDED:
                            answers.append((key, orjson.dumps(line.message or {})))
                finally:
                    close = getattr(lines, "close", None)
                    if close is not None:
                        close()
        except (BatchNotFound, ResultsStreamError):
            return  # deleted since the check, or cut off: the next look decides
        self.cache.add(answers)
        answered = {k for k, _ in answers}
        self.claims.drop_foreign(batch_id, [k for k in wanted.values() if k not in answered])
