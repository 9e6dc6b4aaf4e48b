"""Scores: judge requests through the batch machinery, then per-item scores.

Scoring happens after collection, in two steps:

1. ``judge_requests`` turns every ended candidate into one request per judge scorer;
   the driver writes them into the same ledger (``kind = 'judge'``), so the very same
   ``BatchRunner`` submits, polls, retries, caches and resumes them.
2. ``score_run`` joins each candidate response with its dataset row (streaming both in
   grid order), runs every scorer, and stores one row per (item, scorer) in the
   ledger's ``scores`` table, replacing earlier scores of those scorers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from batchmark.config._schema import EvalSpec
from batchmark.runs._datasets import iter_rows
from batchmark._errors import DatasetError
from batchmark.runs._gc import gc_paused
from batchmark.runs._grid import Request
from batchmark.runs._keys import cache_key
from batchmark.runs._responses import final_responses, response_data
from batchmark.runs._store import Ledger

if TYPE_CHECKING:
    from batchmark.scorers import JudgeScorer, Score, ScoreContext, Scorer

__all__ = [
    "JudgeRequest",
    "judge_requests",
    "iter_contexts",
    "iter_scores",
    "judge_agreement",
    "judges_of",
    "score_run",
    "scores_summary",
]

CHUNK = 10_000  # score rows per ledger transaction


def judges_of(scorers: Sequence[Scorer]) -> list[JudgeScorer]:
    if not scorers:
        return []
    from batchmark.scorers import JudgeScorer

    return [s for s in scorers if isinstance(s, JudgeScorer)]


def iter_contexts(ledger: Ledger, spec: EvalSpec) -> Iterator[tuple[int, str, ScoreContext]]:
    """(candidate seq, custom_id, context) for every ended candidate, joined with its row.

    Responses and rows are both in grid order (row by row), so the join streams.
    """
    from batchmark.scorers import ScoreContext

    rows = iter_rows(spec)
    row = next(rows, None)
    for response in final_responses(ledger, with_params=True):
        while row is not None and row.id != response["row_id"]:
            row = next(rows, None)
        if row is None:
            raise DatasetError(
                f"{spec.dataset.path or spec.dataset.hub}: row {response['row_id']!r} of this "
                "run is no longer in the dataset (or the rows were reordered); scoring needs "
                "the dataset the run was made from"
            )
        params = response.pop("params")
        yield (
            response.pop("seq"),
            response["custom_id"],
            ScoreContext(
                row=row.data,
                row_id=row.id,
                variant=response["variant"],
                model_key=response["model_key"],
                epoch=response["epoch"],
                request=params,
                response=response,
            ),
        )


@dataclass(frozen=True, slots=True)
class JudgeRequest(Request):
    """A judge's request about one candidate: a grid ``Request`` plus whose it is."""

    parent_id: str = ""
    scorer: str = ""


def judge_requests(
    ledger: Ledger, spec: EvalSpec, judges: Sequence[JudgeScorer]
) -> Iterator[JudgeRequest]:
    """The judge requests not yet in the ledger: one per (succeeded candidate, judge).

    Built only once the candidates have ended; a candidate that failed is not judged.
    Requests already in the ledger are skipped, so calling this again after a crash
    adds nothing twice.
    """
    if not judges:
        return
    from batchmark.scorers import judge_custom_id

    exists = "SELECT 1 FROM requests WHERE custom_id = ?"
    for _, custom_id, ctx in iter_contexts(ledger, spec):
        for judge in judges:
            judge_id = judge_custom_id(custom_id, judge.name)
            if ledger.db.execute(exists, (judge_id,)).fetchone():
                continue
            params = judge.build_request(ctx)
            if params is None:
                continue
            yield JudgeRequest(
                custom_id=judge_id,
                variant=ctx.variant,
                model_key=ctx.model_key,
                model=params["model"],
                row_id=ctx.row_id,
                epoch=ctx.epoch,
                params=params,
                cache_key=cache_key(params, 0, spec.api_version),
                parent_id=custom_id,
                scorer=judge.name,
            )


def _judge_response(ledger: Ledger, custom_id: str) -> dict[str, Any] | None:
    row = ledger.db.execute(
        "SELECT r.status, r.data FROM requests q JOIN responses r ON r.seq = q.seq "
        "WHERE q.custom_id = ? ORDER BY r.attempt DESC LIMIT 1",
        (custom_id,),
    ).fetchone()
    if row is None:
        return None
    return {"status": row[0], **response_data(row[0], row[1])}


def _score_one(
    ledger: Ledger, scorer: Scorer, custom_id: str, ctx: ScoreContext, done: Mapping[str, Score]
) -> Score:
    from batchmark.scorers import JudgeScorer, Score, judge_custom_id

    if isinstance(scorer, JudgeScorer):
        if ctx.response.get("status") != "succeeded":
            return Score(0.0, False, f"no response to judge: {ctx.response.get('status')}")
        verdict = _judge_response(ledger, judge_custom_id(custom_id, scorer.name))
        if verdict is None:
            return Score(None, None, "the judge was not asked (resume the run)", invalid=True)
        if verdict["status"] != "succeeded":
            detail = verdict.get("error_type") or verdict["status"]
            return Score(None, None, f"the judge request failed: {detail}", invalid=True)
        return scorer.parse(ctx, verdict)
    combine = getattr(scorer, "combine", None)
    if combine is not None and getattr(scorer, "judges", None) is not None:
        return combine({name: done[name] for name in scorer.judges if name in done})
    return scorer.score(ctx)


def _with_dependencies(scorers: Sequence[Scorer], only: Iterable[str] | None) -> list[Scorer]:
    """The scorers to run, panels after the judges they combine."""
    wanted = set(only) if only is not None else {s.name for s in scorers}
    for s in scorers:
        if s.name in wanted:
            wanted.update(getattr(s, "judges", None) or ())
    chosen = [s for s in scorers if s.name in wanted]
    return sorted(chosen, key=lambda s: getattr(s, "judges", None) is not None)


def score_run(
    ledger: Ledger, spec: EvalSpec, scorers: Sequence[Scorer], only: Iterable[str] | None = None
) -> int:
    """Score every ended candidate with ``scorers`` (or the named subset); returns items."""
    active = _with_dependencies(scorers, only)
    if not active:
        return 0
    from batchmark.scorers import JudgeScorer, agreement

    pairs: dict[str, list[tuple[Any, Any]]] = {
        s.name: [] for s in active if isinstance(s, JudgeScorer) and s.human_label_field
    }
    # Deterministic scorers (the common case) are called directly; judges and panels go
    # through ``_score_one``, which looks up verdicts and combines judges' scores.

    def is_plain(s: Scorer) -> bool:
        return not isinstance(s, JudgeScorer) and getattr(s, "judges", None) is None

    plain = [(s.name, s.score) for s in active if is_plain(s)]
    special = [s for s in active if not is_plain(s)]
    items = 0
    rows: list[tuple[Any, ...]] = []
    dumps = orjson.dumps

    def flush() -> None:
        with ledger.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO scores (seq, scorer, value, passed, invalid, "
                "explanation, answer) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        rows.clear()
        # The loop runs with the cyclic GC paused, but scorers may make reference cycles
        # (jsonschema's errors point at each other; custom scorers can do anything):
        # free the young ones every chunk so memory stays flat.
        gc.collect(0)

    with ledger.transaction() as db:
        db.executemany("DELETE FROM scores WHERE scorer = ?", [(s.name,) for s in active])
    with gc_paused():
        for seq, custom_id, ctx in iter_contexts(ledger, spec):
            done: dict[str, Score] = {}
            for name, score_fn in plain:
                score = done[name] = score_fn(ctx)
                rows.append(_score_row(seq, name, score, dumps))
            for scorer in special:
                score = done[scorer.name] = _score_one(ledger, scorer, custom_id, ctx, done)
                if scorer.name in pairs:
                    pair = scorer.agreement_pair(ctx, score)  # type: ignore[attr-defined]
                    if pair is not None:
                        pairs[scorer.name].append(pair)
                rows.append(_score_row(seq, scorer.name, score, dumps))
            items += 1
            if len(rows) >= CHUNK:
                flush()
        if rows:
            flush()
    if pairs:
        stored = judge_agreement(ledger)
        stored.update({name: agreement(p) for name, p in pairs.items()})
        ledger.set_meta("judge_agreement", orjson.dumps(stored).decode())
    return items


def _score_row(seq: int, scorer: str, score: Score, dumps: Any) -> tuple[Any, ...]:
    """One row of the ledger's ``scores`` table (keyed by the candidate's seq)."""
    passed = score.passed
    answer = score.answer
    return (
        seq,
        scorer,
        score.value,
        None if passed is None else int(passed),
        int(score.invalid),
        score.explanation,
        None if answer is None else dumps(answer).decode(),
    )


def judge_agreement(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Per judge with a ``human_label_field``: ``{n, accuracy, kappa}`` against the labels."""
    return orjson.loads(ledger.get_meta("judge_agreement") or "{}")


_SCORES_SQL = """
SELECT q.custom_id, q.variant, q.model_key, q.row_id, q.epoch, s.scorer, s.value, s.passed,
       s.invalid, s.explanation, s.answer
FROM scores s JOIN requests q ON q.seq = s.seq
ORDER BY s.seq, s.rowid
"""


def iter_scores(ledger: Ledger) -> Iterator[dict[str, Any]]:
    """One record per (item, scorer), in grid order."""
    for row in ledger.db.execute(_SCORES_SQL):
        custom_id, variant, model_key, row_id, epoch, scorer, value, passed = row[:8]
        yield {
            "custom_id": custom_id,
            "variant": variant,
            "model_key": model_key,
            "row_id": row_id,
            "epoch": epoch,
            "scorer": scorer,
            "score": value,
            "passed": None if passed is None else bool(passed),
            "invalid": bool(row[8]),
            "explanation": row[9],
            "answer": None if row[10] is None else orjson.loads(row[10]),
        }


def scores_summary(ledger: Ledger) -> list[dict[str, Any]]:
    """Per (model key, variant, scorer): n, mean score, pass rate, invalid count."""
    sql = """
    SELECT q.model_key, q.variant, s.scorer, count(*), avg(s.value),
           sum(s.passed), count(s.passed), sum(s.invalid)
    FROM scores s JOIN requests q ON q.seq = s.seq
    GROUP BY q.model_key, q.variant, s.scorer
    ORDER BY min(q.seq), s.scorer
    """
    out = []
    for model_key, variant, scorer, n, mean, passed, n_passed, invalid in ledger.db.execute(sql):
        out.append(
            {
                "model": model_key,
                "variant": variant,
                "scorer": scorer,
                "n": n - invalid,
                "invalid": invalid,
                "mean": mean,
                "pass_rate": (passed / n_passed) if n_passed else None,
            }
        )
    return out
