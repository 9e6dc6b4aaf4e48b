"""The floor of batchmark's own work on this machine, and its phases as ratios of it.

Run: ``python benchmarks/floor.py [--cells N ...] [--repeat R] [--no-readme]`` (defaults:
``--cells 100000 1000000 --repeat 3``; sizes above 100,000 are measured in one pass).

The floor is the fastest plain-Python way to do exactly batchmark's work, one core:

- the same renders: each row's template once per variant (Jinja2, compiled once); per
  (row, variant, model) the canonical JSON of the params (orjson, sorted keys) and the
  sha256 cache key over it;
- the same table layout: ``requests`` keyed by an integer ``seq`` in grid order (the
  custom_id unique), ``params`` apart, ``responses`` and ``scores`` keyed by seq;
- the same durability: WAL, ``synchronous=NORMAL``, ``wal_autocheckpoint=10000`` (the
  ledger's PRAGMAs), 5,000 requests and 10,000 results or scores per transaction;
- the same order: results stored as they come (shuffled), scores computed by streaming
  the responses in grid order joined with the dataset's rows, and written in grid order.
- the same interpreter setting: the cyclic garbage collector off in the hot loops, as
  batchmark's (``runs._gc.gc_paused``).

It leaves out what is batchmark's choice rather than the work: the per-request state
column and its indexes (a response row's presence says a request is answered), a
second JSON dump of the params (the canonical bytes are stored), hashed custom_ids (the
cell's names are unique here), the ``datasets`` library (the JSONL file is streamed with
orjson), the scorer's target template, explanation and answer columns.

The same work is then done by batchmark on the same synthetic eval (2 prompt variants x
2 models x 1 epoch, as in ``expand_and_ingest.py``; one ``exact_match`` scorer), and each
phase is reported as ``batchmark seconds / floor seconds`` (1.0x = at the floor):

- expansion: ``expand(spec)`` (dataset read through ``datasets``, templates rendered,
  params, custom_id and cache_key built), each ``entry()`` serialized with orjson and
  written to a buffered file, against the floor writing its entries to a file. ``cold``
  is the first pass in a fresh ``datasets`` cache (the JSONL-to-Arrow conversion a first
  run on a new dataset pays); ``warm`` the best later pass. ``into the ledger`` is what a
  run does (``_driver._insert_requests``) against the floor's inserts into its tables.
- ingestion: the grid is written into a ledger and marked submitted (untimed), then a
  results file is collected by ``BatchRunner.collect`` through a backend that reads it
  from disk with the production line parser (no HTTP, no SDK), then scored by
  ``score_run``; against the floor's collect (parse, join custom_id -> seq, store) and
  score (join rows, exact match, store) on a copy of its request tables. Both sides read
  the same lines in the same shuffled order (each with its own custom_ids).

All in one process, best of ``--repeat``. Every ratio is printed; the script exits
non-zero when one is below 1.0 (a floor slower than batchmark is no floor) and then
writes nothing. Otherwise the figures go to the ``floor`` block of the README's
performance section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import hashlib
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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
#
# Batchmark's own work, done the fastest plain way: the same renders (once per row and
# variant), the same canonical JSON and sha256 key per (row, variant, model), the same
# integer-keyed layout (requests keyed by seq, params apart, responses and scores keyed by
# seq), the same durability (WAL, synchronous=NORMAL, wal_autocheckpoint=10000, 5,000
# requests and 10,000 results per transaction), scores written in grid order. What it
# leaves out is batchmark's choice, not the work's: the per-request state column and its
# indexes (a response row's presence says a request is answered), a second JSON dump of
# the params (the canonical bytes are stored), hashed custom_ids (the cell's names are
# unique here), the dataset library.

VARIANTS = (("plain", ()), ("fewshot", tuple(FEWSHOT)))
FLOOR_SCHEMA = """
CREATE TABLE requests (
    seq INTEGER PRIMARY KEY, custom_id TEXT NOT NULL UNIQUE, variant TEXT NOT NULL,
    model TEXT NOT NULL, row_id TEXT NOT NULL, epoch INTEGER NOT NULL,
    cache_key TEXT NOT NULL
);
CREATE TABLE params (seq INTEGER PRIMARY KEY, params BLOB NOT NULL);
CREATE TABLE responses (seq INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX responses_by_seq ON responses (seq);
CREATE TABLE scores (seq INTEGER PRIMARY KEY, passed INTEGER NOT NULL);
"""
_F = TypeVar("_F", bound=Callable[..., Any])


def gc_off(fn: _F) -> _F:
    """``fn`` with the cyclic garbage collector off, as batchmark's hot loops run
    (``runs._gc.gc_paused``): these loops make no reference cycles."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapped  # type: ignore[return-value]


REQUEST_CHUNK = 5_000  # batchmark's _driver.INSERT_CHUNK
RESULT_CHUNK = 10_000  # batchmark's _collect.COLLECT_CHUNK and _scoring.CHUNK


def floor_db(path: Path, *, fresh: bool) -> Any:
    """A connection with the ledger's PRAGMAs (``_sqlite.connect_store``); ``fresh``:
    a new file with the floor's tables."""
    import sqlite3

    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=10000")
    if fresh:
        db.executescript(FLOOR_SCHEMA)
    return db


def floor_cells(data: Path) -> Iterator[tuple[str, str, str, str, bytes, str]]:
    """Every cell of the grid in grid order: (custom_id, variant, model, row_id,
    canonical params, cache key). The dataset is streamed from its JSONL file; each row's
    template is rendered once per variant, its params serialized and hashed once per
    (variant, model)."""
    import jinja2

    render = jinja2.Environment(autoescape=False).from_string(USER).render
    dumps = orjson.dumps
    loads = orjson.loads
    sort = orjson.OPT_SORT_KEYS
    sha256 = hashlib.sha256
    head = b'{"api_version":' + dumps(None) + b',"epoch":0,"params":'
    with open(data, "rb") as fh:
        for line in fh:
            row = loads(line)
            row_id = row["id"]
            for name, shots in VARIANTS:
                messages = [*shots, {"role": "user", "content": render(row)}]
                for model in MODELS:
                    params = {
                        "model": model,
                        "max_tokens": 32,
                        "system": SYSTEM,
                        "messages": messages,
                    }
                    pbytes = dumps(params, option=sort)
                    key = sha256(head + pbytes + b"}").hexdigest()
                    yield f"{name}-{model}-{row_id}-0", name, model, row_id, pbytes, key


@gc_off
def floor_requests(data: Path, out: Path) -> int:
    """Every cell rendered, keyed and written as a batch entry to a buffered file."""
    n = 0
    with open(out, "wb", buffering=1 << 20) as fh:
        write = fh.write
        for cid, _, _, _, pbytes, _ in floor_cells(data):
            write(b'{"custom_id":"' + cid.encode() + b'","params":' + pbytes + b"}\n")
            n += 1
    return n


@gc_off
def floor_requests_stored(data: Path, db_path: Path) -> int:
    """Every cell rendered, keyed and written into the floor's tables (requests keyed by
    seq, params apart), 5,000 per transaction, as a run writes its grid."""
    db = floor_db(db_path, fresh=True)
    requests: list[tuple[Any, ...]] = []
    params: list[tuple[int, bytes]] = []

    def flush() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, 0, ?)", requests)
        db.executemany("INSERT INTO params VALUES (?, ?)", params)
        db.execute("COMMIT")
        requests.clear()
        params.clear()

    seq = 0
    for cid, variant, model, row_id, pbytes, key in floor_cells(data):
        requests.append((seq, cid, variant, model, row_id, key))
        params.append((seq, pbytes))
        seq += 1
        if len(requests) >= REQUEST_CHUNK:
            flush()
    flush()
    db.close()
    return seq


@gc_off
def floor_results(results: Path, answers: dict[str, str], out: Path) -> int:
    """Parse, exact-match, write a JSON line: every results line (nothing kept that a
    report or a resume could query; printed for scale, no target against it)."""
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


@gc_off
def floor_collect(results: Path, db_path: Path) -> int:
    """Parse every results line, join it to its request (custom_id -> seq, read from
    the requests table as batchmark reads a batch's), store it keyed by seq, 10,000
    lines per transaction."""
    db = floor_db(db_path, fresh=False)
    seq_of = dict(db.execute("SELECT custom_id, seq FROM requests"))
    loads = orjson.loads
    stored: list[tuple[int, bytes]] = []

    def flush() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO responses (seq, data) VALUES (?, ?)", stored)
        db.execute("COMMIT")
        stored.clear()

    n = 0
    with open(results, "rb") as src:
        for line in src:
            item = loads(line)
            if item["result"]["type"] != "succeeded":
                raise ValueError(f"line {n + 1}: not a success")
            stored.append((seq_of[item["custom_id"]], line))
            n += 1
            if len(stored) >= RESULT_CHUNK:
                flush()
    flush()
    db.close()
    return n


@gc_off
def floor_score(data: Path, db_path: Path) -> int:
    """Join every response with its dataset row (both streamed in grid order), exact
    match, store the scores keyed by seq in grid order, 10,000 per transaction."""
    db = floor_db(db_path, fresh=False)
    loads = orjson.loads
    rows = open(data, "rb")  # noqa: SIM115  (closed below)
    row: dict[str, Any] = {"id": None}
    scores: list[tuple[int, int]] = []
    reader = db.cursor()

    def flush() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO scores VALUES (?, ?)", scores)
        db.execute("COMMIT")
        scores.clear()

    n = 0
    query = (
        "SELECT r.seq, r.row_id, s.data FROM requests r JOIN responses s USING (seq) ORDER BY r.seq"
    )
    for seq, row_id, line in reader.execute(query):
        while row["id"] != row_id:
            row = loads(next(rows))
        text = loads(line)["result"]["message"]["content"][0]["text"]
        scores.append((seq, text.strip() == row["answer"]))
        n += 1
        if len(scores) >= RESULT_CHUNK:
            flush()
    flush()
    rows.close()
    db.close()
    return n


def floor_ingest(
    data: Path, results: Path, db_path: Path, requests_db: Path
) -> tuple[float, float, int]:
    """(collect seconds, score seconds, items) on a copy of the floor's request tables."""
    import shutil

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(requests_db, db_path)
    started = time.perf_counter()
    n = floor_collect(results, db_path)
    collected = time.perf_counter()
    assert floor_score(data, db_path) == n
    return collected - started, time.perf_counter() - collected, n


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
    data = folder / "eval" / "data.jsonl"
    answers_by_row = {r["id"]: r["answer"] for r in rows}
    del rows

    from batchmark.config._schema import load_config

    spec = load_config(config)
    # expansion, batchmark: cold (fresh datasets cache) then warm
    started = time.perf_counter()
    n_cells = bm_expand(spec, folder / "bm-requests.jsonl")
    bm_cold = time.perf_counter() - started
    _, bm_warm = best(lambda: bm_expand(spec, folder / "bm-requests.jsonl"), repeat)
    _, bm_ledger = best(lambda: bm_expand_into_ledger(spec, folder / "expand.sqlite"), repeat)

    # ingestion inputs: the ledger's custom_ids, one results file per side (the same
    # lines in the same shuffled order; the floor's custom_ids are its own)
    ledger_path = folder / "ledger.sqlite"
    ledger, ids, row_of = bm_prepare_ledger(spec, ledger_path)
    answers = {cid: answers_by_row[row_id] for cid, row_id in row_of.items()}
    results = folder / "results.jsonl"
    write_results(results, ids, answers)
    ledger.close()

    # the floor: requests to a file, requests into its tables, then results
    n_req, fl_req = best(lambda: floor_requests(data, folder / "fl-requests.jsonl"), repeat)
    assert n_req == n_cells, (n_req, n_cells)
    fl_requests_db = folder / "fl-requests.sqlite"
    _, fl_stored_req = best(lambda: floor_requests_stored(data, fl_requests_db), repeat)
    import sqlite3

    with contextlib.closing(sqlite3.connect(fl_requests_db)) as db:
        fl_ids = [cid for (cid,) in db.execute("SELECT custom_id FROM requests ORDER BY seq")]
        fl_rows = [row for (row,) in db.execute("SELECT row_id FROM requests ORDER BY seq")]
    fl_results = folder / "fl-results.jsonl"
    write_results(
        fl_results, fl_ids, {cid: answers_by_row[r] for cid, r in zip(fl_ids, fl_rows, strict=True)}
    )
    fl_answers = {cid: answers_by_row[r] for cid, r in zip(fl_ids, fl_rows, strict=True)}
    del fl_rows
    n_res, fl_res = best(
        lambda: floor_results(fl_results, fl_answers, folder / "fl-scores.jsonl"), repeat
    )
    floor_passes = [
        floor_ingest(data, fl_results, folder / "fl-ledger.sqlite", fl_requests_db)
        for _ in range(repeat)
    ]
    fl_collect = min(p[0] for p in floor_passes)
    fl_score = min(p[1] for p in floor_passes)
    fl_ingest = min(p[0] + p[1] for p in floor_passes)
    assert floor_passes[0][2] == n_res

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
        ("floor: requests to a file", n_cells, fl_req, None),
        ("floor: requests into its tables", n_cells, fl_stored_req, None),
        ("floor: results to a file (for scale)", n_res, fl_res, None),
        ("floor: collect (parse, join, store)", n_res, fl_collect, None),
        ("floor: score (join rows, match, store)", n_res, fl_score, None),
        ("batchmark: expand + serialize + write, cold", n_cells, bm_cold, fl_req),
        ("batchmark: expand + serialize + write, warm", n_cells, bm_warm, fl_req),
        ("batchmark: expand into the ledger (a run's)", n_cells, bm_ledger, fl_stored_req),
        ("batchmark: collect (parse, normalize, ledger)", n_res, collect_s, fl_collect),
        ("batchmark: score_run (exact_match, ledger)", n_res, score_s, fl_score),
        ("batchmark: ingest (collect + score)", n_res, ingest_s, fl_ingest),
        ("batchmark: ingest + response cache (default)", n_res, cached_s, fl_ingest),
    ]


TARGETS = (
    ("expansion (warm)", "batchmark: expand + serialize + write, warm"),
    ("expansion into the ledger", "batchmark: expand into the ledger (a run's)"),
    ("ingestion (collect + score)", "batchmark: ingest (collect + score)"),
)


def ratios(rows_out: list[tuple[str, int, float, float | None]]) -> dict[str, float]:
    return {label: seconds / fl for label, _, seconds, fl in rows_out if fl is not None}


def targets(rows_out: list[tuple[str, int, float, float | None]]) -> str:
    """The targets for one size (each phase within 2x of its floor), from the rows."""
    got = ratios(rows_out)
    parts = [
        f"{name} {got[label]:.1f}x: {'met' if got[label] <= 2.0 else 'not met'}"
        for name, label in TARGETS
    ]
    return "Targets (within 2x of the floor): " + "; ".join(parts) + "."


def below_floor(rows_out: list[tuple[str, int, float, float | None]]) -> list[str]:
    """The phases faster than their floor: a floor that is not one."""
    return [f"{label} ({r:.2f}x)" for label, r in ratios(rows_out).items() if r < 1.0]


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
    failures: list[str] = []
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
            ratio = "" if floor_seconds is None else f"{seconds / floor_seconds:.2f}x"
            print(f"{label:<48} {n:>9,} {seconds:>8.2f} {rate(n, seconds):>13,.0f} {ratio:>8}")
            table_rows.append(
                (label, f"{n:,}", f"{seconds:.2f}", f"{rate(n, seconds):,.0f}", ratio or "—")
            )
        verdict = targets(rows_out)
        print(verdict)
        failures += [f"{cells:,} cells: {phase}" for phase in below_floor(rows_out)]
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
    if failures:
        # Faster than its floor: the floor does more than batchmark (or the machine was
        # busy during one of them); nothing is published.
        raise SystemExit("below the floor (ratio < 1.0): " + "; ".join(failures))

    if args.readme:
        body = [
            "**The floor** (`benchmarks/floor.py`): the fastest plain-Python way to do "
            "exactly batchmark's work, one core: the same renders (each row's template once "
            "per variant; canonical JSON and a sha256 key per request), the same table layout "
            "(requests keyed by an integer seq in grid order, params apart, responses and "
            "scores keyed by seq), the same durability (WAL, `synchronous=NORMAL`, "
            "`wal_autocheckpoint=10000`, 5,000 requests and 10,000 results per transaction), "
            "scores computed and written in grid order, the cyclic GC off in the loops as "
            "batchmark's. It leaves out batchmark's own "
            "choices: the request state column and its indexes, a second JSON dump of the "
            "params, hashed custom_ids, the `datasets` library, the score's explanation. "
            "Batchmark then does the same work on the same grid (2 variants x 2 models; one "
            "`exact_match` scorer). `x floor` = batchmark seconds / floor seconds (1.0x = at "
            "the floor; the script fails, publishing nothing, when one is below 1.0). "
            f"{'; '.join(repeats)} (the cold expansion is always one pass).",
            "",
            *body_tables,
            "Batchmark's expansion reads the dataset through `datasets` (the floor streams the "
            "JSONL file with orjson); `cold` includes the one-off JSONL-to-Arrow conversion. "
            "Ingestion reads the results from a local file with the production line parser "
            "(no HTTP, no SDK); both sides read the same lines in the same shuffled order, "
            "as the API returns results in any order. `+ response cache` also copies every "
            "answer into a fresh response cache, as a run does by default (the floor keeps "
            "no second copy, so the target is held without it). `results to a file` keeps "
            "nothing a report or a resume could query: printed for scale, no ratio.",
            "",
            _report.machine_summary(PACKAGES, sqlite=True),
        ]
        path = _report.write_block("floor", body)
        print(f"\nwritten: {path.name}, block floor")


if __name__ == "__main__":
    main()
