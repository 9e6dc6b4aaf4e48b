"""The per-request floor on this machine, and batchmark's phases as ratios of it.

Run: ``python benchmarks/floor.py [--cells N ...] [--repeat R] [--no-readme]`` (defaults:
``--cells 100000 1000000 --repeat 3``; sizes above 100,000 are measured in one pass).

The floor is the work no harness can skip, done as plainly as Python allows, one core:

- per request: render a Jinja2 template (compiled once), hash the request (sha256 of
  its canonical JSON: orjson, sorted keys), serialize the ``{custom_id, params}`` entry
  (orjson) and write it to a buffered file;
- per result: parse one results line (orjson), score it (a trivial exact match of the
  first text block against the row's answer) and write the score to a buffered file.

The same work is then done by batchmark, on the same synthetic eval (2 prompt variants
x 2 models x 1 epoch, as in ``expand_and_ingest.py``; one ``exact_match`` scorer), and
each phase is reported as ``floor rate / batchmark rate`` (1.0x = at the floor):

- expansion: ``expand(spec)`` (dataset read through ``datasets``, templates rendered,
  params, custom_id and cache_key built), each ``entry()`` serialized with orjson and
  written to a buffered file. ``cold`` is the first pass in a fresh ``datasets`` cache
  (it converts the JSONL file to Arrow, as a first run on a new dataset does); ``warm``
  is the best later pass.
- ingestion: the grid is written into a ledger and marked submitted (untimed), then the
  same results file the floor parsed is collected by ``BatchRunner.collect`` through a
  backend that reads it from disk with the production line parser (no HTTP, no SDK:
  parse, normalize, write responses and states to SQLite), then scored by ``score_run``
  (the scored table: rows joined back, ``exact_match``, scores written to SQLite).

All in one process, best of ``--repeat`` for the floor and the warm passes. The figures
are printed, then written to the ``floor`` block of the README's performance section
(``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _report
import orjson
from expand_and_ingest import FEWSHOT, MODELS, SYSTEM, write_eval

PACKAGES = ("batchmark", "jinja2", "orjson", "datasets", "pyarrow")
BATCH_ID = "msgbatch_floor"
USER = "Passage: {{ passage }}\nQuestion: {{ question }}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(fn: Callable[[], int], repeat: int) -> tuple[int, float]:
    """(items, best seconds) over ``repeat`` runs of ``fn`` (which returns its items)."""
    times = []
    n = 0
    for _ in range(repeat):
        started = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - started)
    return n, min(times)


# --- set-up ------------------------------------------------------------------------------


def make_eval(folder: Path, cells: int) -> tuple[Path, list[dict[str, Any]]]:
    """The synthetic eval of ``expand_and_ingest.py`` plus one exact_match scorer."""
    config = write_eval(folder, cells, 1)
    spec = json.loads(config.read_text())
    spec["scorers"] = [{"exact_match": {"target": "{{ answer }}"}}]
    config.write_text(json.dumps(spec, indent=2))
    rows = [orjson.loads(line) for line in (folder / "data.jsonl").read_bytes().splitlines()]
    return config, rows


def write_results(path: Path, custom_ids: list[str], answers: dict[str, str]) -> None:
    """A results JSONL shaped as the Message Batches API's, every other answer wrong.

    Lines are in a shuffled order (seeded), as the API returns them: results are not in
    the order of the requests, so every store is written in random key order.
    """
    order = list(range(len(custom_ids)))
    random.Random(0).shuffle(order)
    with open(path, "wb") as fh:
        for i in order:
            cid = custom_ids[i]
            text = answers[cid] if i % 2 == 0 else "I do not know."
            line = {
                "custom_id": cid,
                "result": {
                    "type": "succeeded",
                    "message": {
                        "id": f"msg_{i:08d}",
                        "type": "message",
                        "role": "assistant",
                        "model": MODELS[i % 2],
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 60, "output_tokens": 4},
                    },
                },
            }
            fh.write(orjson.dumps(line) + b"\n")


# --- the floor ---------------------------------------------------------------------------


def floor_requests(rows: list[dict[str, Any]], out: Path) -> int:
    """Render, hash, serialize, write: every cell, as plainly as possible."""
    import jinja2

    template = jinja2.Environment(autoescape=False).from_string(USER)
    render = template.render
    dumps = orjson.dumps
    sort = orjson.OPT_SORT_KEYS
    sha256 = hashlib.sha256
    variants = (("plain", None), ("fewshot", FEWSHOT))
    n = 0
    with open(out, "wb", buffering=1 << 20) as fh:
        write = fh.write
        for row in rows:
            for name, shots in variants:
                for model in MODELS:
                    user = {"role": "user", "content": render(row)}
                    params = {
                        "model": model,
                        "max_tokens": 32,
                        "system": SYSTEM,
                        "messages": [*shots, user] if shots else [user],
                    }
                    key = sha256(dumps(params, option=sort)).hexdigest()
                    cid = f"{name}-{model}-{row['id']}-{key[:8]}"
                    write(dumps({"custom_id": cid, "params": params}))
                    write(b"\n")
                    n += 1
    return n


def floor_results(results: Path, answers: dict[str, str], out: Path) -> int:
    """Parse, exact-match, write: every results line."""
    loads = orjson.loads
    dumps = orjson.dumps
    n = 0
    with open(results, "rb") as src, open(out, "wb", buffering=1 << 20) as fh:
        write = fh.write
        for line in src:
            item = loads(line)
            cid = item["custom_id"]
            text = item["result"]["message"]["content"][0]["text"]
            write(dumps((cid, text.strip() == answers[cid])))
            write(b"\n")
            n += 1
    return n


def floor_results_stored(results: Path, answers: dict[str, str], db_path: Path) -> int:
    """Parse, exact-match, store: the response line and the score into SQLite.

    The same work as ``floor_results``, but kept the way an eval harness must keep it
    (queryable, durable): two tables keyed by custom_id, 10,000 lines per transaction,
    WAL mode, ``synchronous=NORMAL`` (batchmark's ledger settings).
    """
    import sqlite3

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE responses (custom_id TEXT PRIMARY KEY, data BLOB NOT NULL)")
    db.execute("CREATE TABLE scores (custom_id TEXT PRIMARY KEY, passed INTEGER NOT NULL)")
    loads = orjson.loads
    n = 0
    stored: list[tuple[str, bytes]] = []
    scores: list[tuple[str, bool]] = []

    def flush() -> None:
        db.execute("BEGIN")
        db.executemany("INSERT INTO responses VALUES (?, ?)", stored)
        db.executemany("INSERT INTO scores VALUES (?, ?)", scores)
        db.execute("COMMIT")
        stored.clear()
        scores.clear()

    with open(results, "rb") as src:
        for line in src:
            item = loads(line)
            cid = item["custom_id"]
            text = item["result"]["message"]["content"][0]["text"]
            stored.append((cid, line))
            scores.append((cid, text.strip() == answers[cid]))
            n += 1
            if len(stored) >= 10_000:
                flush()
    flush()
    db.close()
    return n


# --- batchmark ---------------------------------------------------------------------------


class FileBackend:
    """``BatchRunner``'s backend for ``collect`` only: results read from a local file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fetch(self, batch_id: str) -> Iterator[Any]:
        from batchmark.runs._backend import _result_line

        loads = orjson.loads
        with open(self.path, "rb") as fh:
            for line in fh:
                yield _result_line(loads(line))


def bm_expand(spec: Any, out: Path) -> int:
    from batchmark.runs._grid import expand

    dumps = orjson.dumps
    n = 0
    with open(out, "wb", buffering=1 << 20) as fh:
        write = fh.write
        for request in expand(spec):
            write(dumps(request.entry()))
            write(b"\n")
            n += 1
    return n


def _expanded_ledger(spec: Any, path: Path) -> tuple[Any, int]:
    """A fresh ledger at ``path`` with the grid written in as a run writes it; (ledger, n)."""
    from batchmark.runs._driver import _insert_requests
    from batchmark.runs._grid import expand
    from batchmark.runs._ledger import Ledger

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    ledger = Ledger(path)
    return ledger, _insert_requests(ledger, expand(spec), None, file=str(spec.path))


def bm_prepare_ledger(spec: Any, path: Path) -> tuple[Any, list[str], dict[str, str]]:
    """A ledger holding the grid, every request submitted in one batch (untimed);
    with its custom_ids in grid order and each one's row id."""
    from batchmark.runs._backend import BatchInfo

    ledger, n = _expanded_ledger(spec, path)
    intent = ledger.record_intent(range(n))
    ledger.mark_sending([intent])
    ended = BatchInfo(BATCH_ID, "ended", {"succeeded": n}, datetime.datetime.now(datetime.UTC))
    ledger.record_batch(intent, ended, adopted=False)
    row_of = dict(ledger.db.execute("SELECT custom_id, row_id FROM requests ORDER BY seq"))
    return ledger, list(row_of), row_of


def bm_ingest(
    spec: Any, ledger: Any, results: Path, cache_path: Path | None = None
) -> tuple[float, float, int]:
    """(collect seconds, score seconds, items scored); with ``cache_path``, the answers
    also go to a fresh response cache there, as in a run (which has one by default)."""
    from batchmark.config._schema import BatchConfig
    from batchmark.runs._batches import BatchRunner
    from batchmark.runs._scoring import score_run
    from batchmark.runs._store import ResponseCache

    cache = None
    if cache_path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache_path}{suffix}").unlink(missing_ok=True)
        cache = ResponseCache(cache_path)
    runner = BatchRunner(ledger, FileBackend(results), BatchConfig(), cache=cache)
    scorers = spec.build_scorers()
    started = time.perf_counter()
    runner.collect(BATCH_ID)
    collected = time.perf_counter()
    items = score_run(ledger, spec, scorers)
    scored = time.perf_counter()
    states = ledger.state_counts()
    assert states == {"done": items}, states
    return collected - started, scored - collected, items


# --- main --------------------------------------------------------------------------------


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bm_expand_into_ledger(spec: Any, path: Path) -> int:
    """What a run does before its first batch: the grid written into a fresh ledger."""
    ledger, n = _expanded_ledger(spec, path)
    ledger.close()
    return n


def measure(folder: Path, cells: int, repeat: int) -> list[tuple[str, int, float, float | None]]:
    """``(phase, items, seconds, floor seconds or None)`` for one grid size."""
    os.environ["HF_DATASETS_CACHE"] = str(folder / "hf")
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    config, rows = make_eval(folder / "eval", cells)
    answers_by_row = {r["id"]: r["answer"] for r in rows}

    from batchmark.config._schema import load_config

    spec = load_config(config)
    # expansion, batchmark: cold (fresh datasets cache) then warm
    started = time.perf_counter()
    n_cells = bm_expand(spec, folder / "bm-requests.jsonl")
    bm_cold = time.perf_counter() - started
    _, bm_warm = best(lambda: bm_expand(spec, folder / "bm-requests.jsonl"), repeat)
    _, bm_ledger = best(lambda: bm_expand_into_ledger(spec, folder / "expand.sqlite"), repeat)

    # ingestion inputs: the ledger's custom_ids, one results file for both sides
    ledger_path = folder / "ledger.sqlite"
    ledger, ids, row_of = bm_prepare_ledger(spec, ledger_path)
    answers = {cid: answers_by_row[row_id] for cid, row_id in row_of.items()}
    results = folder / "results.jsonl"
    write_results(results, ids, answers)
    ledger.close()

    # the floor
    n_req, fl_req = best(lambda: floor_requests(rows, folder / "fl-requests.jsonl"), repeat)
    assert n_req == n_cells, (n_req, n_cells)
    n_res, fl_res = best(
        lambda: floor_results(results, answers, folder / "fl-scores.jsonl"), repeat
    )
    _, fl_stored = best(
        lambda: floor_results_stored(results, answers, folder / "fl-stored.sqlite"), repeat
    )

    # ingestion, batchmark: a fresh submitted ledger for every pass; without the response
    # cache (the floor keeps no second copy either), then with it (a run's default)
    passes = []
    cached = []
    for _ in range(repeat):
        for out, cache_path in ((passes, None), (cached, folder / "cache.sqlite")):
            ledger, _, _ = bm_prepare_ledger(spec, ledger_path)
            try:
                out.append(bm_ingest(spec, ledger, results, cache_path))
            finally:
                ledger.close()
    collect_s = min(p[0] for p in passes)
    score_s = min(p[1] for p in passes)
    ingest_s = min(p[0] + p[1] for p in passes)
    cached_s = min(p[0] + p[1] for p in cached)
    assert passes[0][2] == cached[0][2] == n_res, (passes[0][2], cached[0][2], n_res)

    return [
        ("floor: request (render, hash, serialize, write)", n_cells, fl_req, None),
        ("floor: result (parse, exact match, write)", n_res, fl_res, None),
        ("floor: result, stored (parse, match, SQLite)", n_res, fl_stored, None),
        ("batchmark: expand + serialize + write, cold", n_cells, bm_cold, fl_req),
        ("batchmark: expand + serialize + write, warm", n_cells, bm_warm, fl_req),
        ("batchmark: expand into the ledger (a run's)", n_cells, bm_ledger, fl_req),
        ("batchmark: collect (parse, normalize, ledger)", n_res, collect_s, None),
        ("batchmark: score_run (exact_match, ledger)", n_res, score_s, None),
        ("batchmark: ingest vs the file floor", n_res, ingest_s, fl_res),
        ("batchmark: ingest vs the stored floor", n_res, ingest_s, fl_stored),
        ("batchmark: ingest + response cache (default)", n_res, cached_s, fl_stored),
    ]


def targets(rows_out: list[tuple[str, int, float, float | None]]) -> str:
    """Issue 7's targets for one size (each phase within 2x of its floor), from the rows."""
    ratios = {label: seconds / fl for label, _, seconds, fl in rows_out if fl is not None}
    checks = [
        ("expansion (warm)", ratios["batchmark: expand + serialize + write, warm"]),
        ("expansion into the ledger", ratios["batchmark: expand into the ledger (a run's)"]),
        ("ingestion vs the stored floor", ratios["batchmark: ingest vs the stored floor"]),
    ]
    parts = [f"{name} {r:.1f}x: {'met' if r <= 2.0 else 'not met'}" for name, r in checks]
    return "Targets (issue 7, within 2x of the floor): " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cells", type=int, nargs="+", default=[100_000, 1_000_000], help="multiples of 4"
    )
    parser.add_argument("--repeat", type=int, default=3, help="passes at up to 100,000 cells")
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)

    print("batchmark benchmark: the per-request floor, and batchmark's phases against it")
    print("grid:     2 variants x 2 models x 1 epoch; one core, one process")
    for line in _report.machine_lines(PACKAGES, sqlite=True):
        print(line)

    body_tables: list[str] = []
    repeats = []
    for cells in args.cells:
        repeat = args.repeat if cells <= 100_000 else 1
        repeats.append(f"{cells:,}: {'best of ' + str(repeat) if repeat > 1 else 'one pass'}")
        with tempfile.TemporaryDirectory(prefix="batchmark-floor-") as tmp:
            rows_out = measure(Path(tmp), cells, repeat)
        print(f"\n{cells:,} cells ({repeats[-1]})")
        header = f"{'phase':<48} {'items':>9} {'seconds':>8} {'items/s/core':>13} {'x floor':>8}"
        print(header)
        print("-" * len(header))
        table_rows = []
        for label, n, seconds, floor_seconds in rows_out:
            ratio = "" if floor_seconds is None else f"{seconds / floor_seconds:.1f}x"
            print(f"{label:<48} {n:>9,} {seconds:>8.2f} {rate(n, seconds):>13,.0f} {ratio:>8}")
            table_rows.append(
                (label, f"{n:,}", f"{seconds:.2f}", f"{rate(n, seconds):,.0f}", ratio or "—")
            )
        verdict = targets(rows_out)
        print(verdict)
        body_tables += [
            f"{cells:,} cells:",
            "",
            *_report.table(
                ("phase", "items", "seconds", "items/s per core", "x floor"), table_rows
            ),
            "",
            verdict,
            "",
        ]
    print(f"\npeak RSS: {_peak_mb():,.0f} MB (whole script, one process)")

    if args.readme:
        body = [
            "**The floor** (`benchmarks/floor.py`): the unavoidable work per request (render a "
            "compiled Jinja2 template, sha256 of the canonical JSON, orjson, buffered write) "
            "and per result (orjson parse, exact match, then a buffered write, or SQLite "
            "for the stored floor), one core; then batchmark doing the same work on the same "
            "grid (2 variants x 2 models; one `exact_match` scorer). `x floor` = floor rate / "
            "batchmark rate (1.0x = at the floor). "
            f"{'; '.join(repeats)} (the cold expansion is always one pass).",
            "",
            *body_tables,
            "Batchmark's expansion reads the dataset through `datasets` (the floor starts from "
            "rows already in memory); `cold` includes the one-off JSONL-to-Arrow conversion; "
            "`into the ledger` is what a run does (requests and params written to SQLite, "
            "5,000 per transaction) against the floor's JSONL file. "
            "Ingestion reads the results from a local file with the production line parser "
            "(no HTTP, no SDK) and writes responses, states and scores to the SQLite ledger; "
            "`+ response cache` also copies every answer into a fresh response cache, as a "
            "run does by default (the floor keeps no second copy, so the target is held "
            "without it). "
            "The file floor writes one JSON line per score and keeps nothing queryable; the "
            "stored floor keeps each result line and its score in SQLite (two tables keyed "
            "by custom_id, 10,000 lines per transaction, WAL) — the ingestion target is held "
            "against that one. Per item, the stored floor slows down more from 100,000 to "
            "1,000,000 than batchmark's ingestion does (compare the two tables), so the "
            "100,000 ratio is the tighter test. "
            "The results file is shuffled (seeded), as the API returns results in any order.",
            "",
            _report.machine_summary(PACKAGES, sqlite=True),
        ]
        path = _report.write_block("floor", body)
        print(f"\nwritten: {path.name}, block floor")


if __name__ == "__main__":
    main()
