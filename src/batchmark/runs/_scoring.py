"""Scores: batched scorers' requests through the batch machinery, then per-item scores.

Scoring happens after collection, in two steps, by the scorers' kinds (a ``ScorerSet``
sorts them once, when they are built):

1. ``judge_requests`` asks every batched scorer (a judge, a plugin's own) for its
   request about each candidate that succeeded; the driver writes them into the same
   ledger (``kind = 'judge'``), so the very same ``BatchRunner`` submits, polls,
   retries, caches and resumes them, every batched scorer's requests together.
2. ``score_run`` joins each candidate response with its dataset row (streaming both in
   grid order) and runs the scorers in their set's ``run_order``: plain ones on the
   context, batched ones on their request's answer, combining ones on the scores
   before them. It stores one row per (item, scorer) in the ledger's ``scores`` table,
   with the scorer's spec hash, replacing earlier scores of those scorers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from batchmark._errors import BatchmarkError, ConfigError, DatasetError
from batchmark.config._schema import EvalSpec
from batchmark.runs._datasets import iter_rows
from batchmark.runs._gc import gc_paused
from batchmark.runs._grid import Request
from batchmark.runs._keys import cache_key, judge_custom_id
from batchmark.runs._ledger import Ledger
from batchmark.runs._responses import final_responses, response_data
from batchmark.scorers import (
    BatchedScorer,
    CombiningScorer,
    Score,
    ScoreContext,
    Scorer,
    ScorerSet,
    agreement,
)
from batchmark.scorers._base import no_response, short

__all__ = [
    "JudgeRequest",
    "judge_requests",
    "iter_contexts",
    "iter_scores",
    "judge_agreement",
    "judges_of",
    "score_run",
    "scorer_request",
    "scores_summary",
    "stored_spec_hashes",
]

CHUNK = 10_000  # score rows per ledger transaction


def judges_of(scorers: Sequence[Scorer]) -> tuple[BatchedScorer, ...]:
    """The batched scorers (judges, plugins' own): their requests make the second batch."""
    return ScorerSet.of(scorers).batched


def iter_contexts(ledger: Ledger, spec: EvalSpec) -> Iterator[tuple[int, str, ScoreContext]]:
    """(candidate seq, custom_id, context) for every ended candidate, joined with its row.

    Responses and rows are both in grid order (row by row), so the join streams.
    """
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
    """A batched scorer's request about one candidate: a grid ``Request`` plus whose."""

    parent_id: str = ""
    scorer: str = ""


def scorer_request(scorer: BatchedScorer, ctx: ScoreContext) -> dict[str, Any] | None | Score:
    """``scorer.build_request(ctx)``, checked: the params (a copy), ``None`` (not asked),
    or an invalid ``Score`` when it raised something else than a ``BatchmarkError``."""
    try:
        params = scorer.build_request(ctx)
    except BatchmarkError:
        raise
    except Exception as err:
        return Score.of_invalid(
            f"{type(scorer).__name__}.build_request raised {type(err).__name__}: {err}"
        )
    if params is None:
        return None
    if not (
        isinstance(params, Mapping)
        and isinstance(params.get("model"), str)
        and isinstance(params.get("max_tokens"), int)
    ):
        raise ConfigError(
            None,
            f"scorer {scorer.name!r}, row {ctx.row_id!r}: build_request returned "
            f"{short(params)}, not Messages params with `model` and `max_tokens`",
        )
    try:
        orjson.dumps(params)
    except TypeError as err:
        raise ConfigError(
            None,
            f"scorer {scorer.name!r}, row {ctx.row_id!r}: build_request returned params that "
            f"are not JSON ({err})",
        ) from None
    return dict(params)


def _checked(scorer: Scorer, method: str, result: Any) -> Score:
    """What a plugin's ``parse`` or ``combine`` returned, if a ``Score``; else invalid."""
    if isinstance(result, Score):
        return result
    name = type(result).__name__
    return Score.of_invalid(f"{type(scorer).__name__}.{method} returned {name}, not a Score")


def judge_requests(
    ledger: Ledger, spec: EvalSpec, judges: Sequence[BatchedScorer]
) -> Iterator[JudgeRequest]:
    """The batched scorers' requests not yet in the ledger: one per (succeeded
    candidate, batched scorer) that asks about it.

    Built only once the candidates have ended; a candidate that failed is not asked
    about. Requests already in the ledger are skipped, so calling this again after a
    crash adds nothing twice.
    """
    if not judges:
        return
    exists = "SELECT 1 FROM requests WHERE custom_id = ?"
    for _, custom_id, ctx in iter_contexts(ledger, spec):
        if ctx.response.get("status") != "succeeded":
            continue
        for judge in judges:
            judge_id = judge_custom_id(custom_id, judge.name)
            if ledger.db.execute(exists, (judge_id,)).fetchone():
                continue
            params = scorer_request(judge, ctx)
            if not isinstance(params, dict):
                continue  # not asked: ``score_run`` scores the item without an answer
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


def _answer(ledger: Ledger, custom_id: str) -> dict[str, Any] | None:
    """The final response to a batched scorer's request, or ``None`` if never asked."""
    row = ledger.db.execute(
        "SELECT r.status, r.data FROM requests q JOIN responses r ON r.seq = q.seq "
        "WHERE q.custom_id = ? ORDER BY r.attempt DESC LIMIT 1",
        (custom_id,),
    ).fetchone()
    if row is None:
        return None
    return {"status": row[0], **response_data(row[0], row[1])}


def _batched_score(
    ledger: Ledger, scorer: BatchedScorer, custom_id: str, ctx: ScoreContext
) -> Score:
    """A batched scorer's score of one item, from the answer to its request."""
    failed = no_response(ctx)
    if failed is not None:
        return failed
    answer = _answer(ledger, judge_custom_id(custom_id, scorer.name))
    if answer is None:
        asked = scorer_request(scorer, ctx)
        if isinstance(asked, Score):
            return asked
        if asked is None:
            return scorer.score(ctx)
        return Score.of_invalid(f"{scorer.name} was not asked about this item (resume the run)")
    if answer["status"] != "succeeded":
        detail = answer.get("error_type") or answer["status"]
        return Score.of_invalid(f"the {scorer.name} request failed: {detail}")
    try:
        return _checked(scorer, "parse", scorer.parse(ctx, answer))
    except BatchmarkError:
        raise
    except Exception as err:
        return Score.of_invalid(f"{type(scorer).__name__}.parse raised {type(err).__name__}: {err}")


def _combined_score(scorer: CombiningScorer, ctx: ScoreContext, done: Mapping[str, Score]) -> Score:
    """A combining scorer's score of one item, from its dependencies' scores."""
    scores = {name: done[name] for name in scorer.depends_on if name in done}
    try:
        return _checked(scorer, "combine", scorer.combine(scores, ctx))
    except BatchmarkError:
        raise
    except Exception as err:
        return Score.of_invalid(
            f"{type(scorer).__name__}.combine raised {type(err).__name__}: {err}"
        )


_INSERT = (
    "INSERT OR REPLACE INTO scores "
    "(seq, scorer, value, passed, invalid, explanation, answer, spec_hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def score_run(
    ledger: Ledger, spec: EvalSpec, scorers: Sequence[Scorer], only: Iterable[str] | None = None
) -> int:
    """Score every ended candidate with ``scorers`` (or the named subset and what it
    depends on); returns the number of items."""
    chosen = ScorerSet.of(scorers).select(only)
    if not chosen:
        return 0
    hash_of = chosen.spec_hash
    plain = [(s.name, s.score, hash_of(s.name)) for s in chosen.plain]
    batched = [(s, hash_of(s.name)) for s in chosen.batched]
    combining = [(s, hash_of(s.name)) for s in chosen.combining]
    pairs: dict[str, list[tuple[Any, Any]]] = {
        s.name: [] for s in chosen.batched if s.agreement_field
    }
    items = 0
    rows: list[tuple[Any, ...]] = []
    dumps = orjson.dumps

    def flush() -> None:
        with ledger.transaction() as db:
            db.executemany(_INSERT, rows)
        rows.clear()
        # The loop runs with the cyclic GC paused, but scorers may make reference cycles
        # (jsonschema's errors point at each other; custom scorers can do anything):
        # free the young ones every chunk so memory stays flat.
        gc.collect(0)

    with ledger.transaction() as db:
        db.executemany("DELETE FROM scores WHERE scorer = ?", [(s.name,) for s in chosen])
        written = [s.name for s in ScorerSet.of(scorers)]
        ledger.set_meta(SCORER_ORDER, orjson.dumps(written).decode())
    with gc_paused():
        for seq, custom_id, ctx in iter_contexts(ledger, spec):
            done: dict[str, Score] = {}
            for name, score_fn, digest in plain:
                score = done[name] = score_fn(ctx)
                rows.append(_score_row(seq, name, score, digest, dumps))
            for scorer, digest in batched:
                score = done[scorer.name] = _batched_score(ledger, scorer, custom_id, ctx)
                if scorer.name in pairs:
                    pair = scorer.agreement_pair(ctx, score)
                    if pair is not None:
                        pairs[scorer.name].append(pair)
                rows.append(_score_row(seq, scorer.name, score, digest, dumps))
            for scorer, digest in combining:
                score = done[scorer.name] = _combined_score(scorer, ctx, done)
                rows.append(_score_row(seq, scorer.name, score, digest, dumps))
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


def _score_row(
    seq: int, scorer: str, score: Score, spec_hash: str | None, dumps: Any
) -> tuple[Any, ...]:
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
        spec_hash,
    )


def stored_spec_hashes(ledger: Ledger) -> dict[str, list[str]]:
    """Per scorer with stored scores: the spec hashes they were made with (``NULL``s,
    from ledgers older than the column, left out)."""
    out: dict[str, list[str]] = {}
    sql = "SELECT DISTINCT scorer, spec_hash FROM scores ORDER BY scorer, spec_hash"
    for scorer, digest in ledger.db.execute(sql):
        found = out.setdefault(scorer, [])
        if digest is not None:
            found.append(digest)
    return out


def judge_agreement(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Per judge with a ``human_label_field``: ``{n, accuracy, kappa}`` against the labels."""
    return orjson.loads(ledger.get_meta("judge_agreement") or "{}")


_SCORES_SQL = """
SELECT q.custom_id, q.variant, q.model_key, q.row_id, q.epoch, s.scorer, s.value, s.passed,
       s.invalid, s.explanation, s.answer, s.spec_hash
FROM scores s JOIN requests q ON q.seq = s.seq
ORDER BY s.seq, {rank}
"""

SCORER_ORDER = "scorer_order"
"""The ledger's meta key for the config's scorer names, in the order written."""


def _scorer_rank(ledger: Ledger) -> tuple[str, list[str]]:
    """An SQL expression (and its parameters) ranking ``s.scorer`` by the config's order
    (the one ``score_run`` recorded); scorers it does not name rank after, by name, so
    the columns of a report do not move when one scorer is scored again."""
    names = orjson.loads(ledger.get_meta(SCORER_ORDER) or "[]")
    if not names:
        return "s.scorer", []
    whens = " ".join("WHEN ? THEN " + str(i) for i in range(len(names)))
    return f"CASE s.scorer {whens} ELSE {len(names)} END, s.scorer", names


def iter_scores(ledger: Ledger) -> Iterator[dict[str, Any]]:
    """One record per (item, scorer), in grid order and each item's scorers in the
    config's order, with the spec hash of the scorer config that made it (``None`` for
    scores stored before spec hashes were)."""
    rank, names = _scorer_rank(ledger)
    for row in ledger.db.execute(_SCORES_SQL.format(rank=rank), names):
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
            "spec_hash": row[11],
        }


SCORE_VALUE_COLUMNS = (
    "model_key",
    "variant",
    "scorer",
    "custom_id",
    "row_id",
    "epoch",
    "score",
    "passed",
    "invalid",
)
"""What ``score_value_columns`` keeps: a score's cell, item and value, no text."""


def score_value_columns(ledger: Ledger) -> dict[str, list[Any]]:
    """:func:`iter_scores` (in its order) without explanations, answers and spec hashes,
    as one list per column of ``SCORE_VALUE_COLUMNS``, names repeated on every row one
    string each: what statistics read, in a fraction of the memory of a record per
    score."""
    columns: dict[str, list[Any]] = {c: [] for c in SCORE_VALUE_COLUMNS}
    names: dict[str, str] = {}
    shared = ("model_key", "variant", "scorer", "row_id")
    for record in iter_scores(ledger):
        for key, values in columns.items():
            value = record[key]
            values.append(names.setdefault(value, value) if key in shared else value)
    return columns


def scores_summary(ledger: Ledger) -> list[dict[str, Any]]:
    """Per (model key, variant, scorer): n, mean score, pass rate, invalid count."""
    sql = """
    SELECT q.model_key, q.variant, s.scorer, count(*), avg(s.value),
           sum(s.passed), count(s.passed), sum(s.invalid)
    FROM scores s JOIN requests q ON q.seq = s.seq
    GROUP BY q.model_key, q.variant, s.scorer
    ORDER BY min(q.seq), {rank}
    """
    rank, names = _scorer_rank(ledger)
    out = []
    rows = ledger.db.execute(sql.format(rank=rank), names)
    for model_key, variant, scorer, n, mean, passed, n_passed, invalid in rows:
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
