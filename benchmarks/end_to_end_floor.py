"""A whole ``batchmark run`` against the floor of its own work, in one script.

Run: ``python benchmarks/end_to_end_floor.py [--cells N ...] [--repeat R]
[--poll-interval S] [--no-readme]`` (defaults: ``--cells 100000 --repeat 2
--poll-interval 0.2``; ``--cells 100000 1000000`` adds the million, ~10 more minutes).

The eval is ``floor.py``'s (rows = cells / 4: 2 prompt variants x 2 models, one
``exact_match`` scorer, ``max_tokens`` 32). For each size:

- **batchmark**: ``batchmark emulator --processing-seconds 0`` as its own subprocess, then
  ``batchmark run eval.yaml -q --no-cache --poll-interval S`` as another (the floor keeps
  no response cache either), first with an empty ``datasets`` cache (**cold**: the
  JSONL-to-Arrow conversion a first run on a new dataset pays), then again in a fresh
  results folder with that cache kept (**warm**), ``--repeat`` times each. The run is
  started through this script (``_probe.py run``), which, as the run exits, records the
  modules it imported.
- **start-up**: a fresh process importing exactly those modules, in the same order
  (``_probe.py imports``): the interpreter and the imports a run pays before any work.
- **the floor** (in this process, timed with ``time.process_time``): ``floor.py``'s plain
  code doing the run's unavoidable work: stream the JSONL rows, render each row and
  variant once, canonical JSON and sha256 key per request, insert requests and params
  into integer-keyed SQLite tables (5,000 per transaction, the ledger's PRAGMAs), build
  each batch's create body from them (up to 100,000 requests a batch); then parse, join
  (custom_id -> seq), store the 100,000 results, join them with the rows, exact match
  and store the scores in grid order (10,000 per transaction).

**Own work** is the run's CPU time (user + system, all its threads, from ``os.wait4``)
minus the start-up process's: the waits (poll sleeps, HTTP round trips, the emulator's
work, which runs in its own process) cost no CPU, so they are out by construction, with
no instrumentation of the run. The wall times are printed beside it: ``wall - start-up``
still holds the waits. ``x floor`` = own work / the floor's CPU seconds. The target
(issue 18): own work within 2x of the floor, cold and warm.

The figures are printed, then written to the ``end_to_end_floor`` block of the README's
performance section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report
from end_to_end import timed
from floor import floor_collect, floor_requests_stored, floor_score, make_eval, write_results
from million import start_emulator, stop, tail

PACKAGES = ("batchmark", "anthropic", "orjson", "datasets", "pyarrow", "jinja2")
BATCH_REQUESTS = 100_000
PROBE = Path(__file__).with_name("_probe.py")


# --- measuring ---------------------------------------------------------------------------


def startup(modules: Path, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """A fresh process importing the run's modules: its wall and CPU seconds."""
    cmd = [sys.executable, str(PROBE), "imports", str(modules)]
    log = cwd / "startup.log"
    r = timed(cmd, cwd, env, log)
    if r["rc"] != 0:
        raise SystemExit(f"the start-up probe failed:\n{tail(log)}")
    r["failed"] = json.loads(log.read_text().splitlines()[-1])["failed"]
    return r


def one_run(config: Path, folder: Path, env: dict[str, str], poll: float) -> dict[str, Any]:
    """One ``batchmark run`` in ``folder``; checked complete (every cell scored)."""
    folder.mkdir(parents=True)
    modules = folder / "modules.json"
    cmd = [sys.executable, str(PROBE), "run", str(modules), "run", str(config)]
    cmd += ["--results", str(folder / "results"), "-q", "--no-cache"]
    cmd += ["--poll-interval", str(poll)]
    r = timed(cmd, config.parent, env, folder / "run.log")
    if r["rc"] != 0:
        raise SystemExit(f"batchmark run failed ({r['rc']}):\n{tail(folder / 'run.log')}")
    (ledger,) = (folder / "results").glob("*/*/ledger.sqlite")
    with sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True) as db:
        r["done"] = db.execute("SELECT count(*) FROM requests WHERE state = 'done'").fetchone()[0]
        r["scored"] = db.execute("SELECT count(*) FROM scores").fetchone()[0]
    r["modules"] = modules
    return r


def floor_run(data: Path, folder: Path) -> dict[str, float]:
    """The floor of the whole run, in this process: CPU and wall seconds, items."""
    db_path = folder / "floor.sqlite"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    cells = floor_requests_stored(data, db_path)
    body_bytes = 0
    with sqlite3.connect(db_path) as db:
        query = "SELECT custom_id, params FROM requests JOIN params USING (seq) ORDER BY seq"
        entries: list[bytes] = []
        for cid, params in db.execute(query):
            entries.append(b'{"custom_id":"' + cid.encode() + b'","params":' + params + b"}")
            if len(entries) == BATCH_REQUESTS:
                body_bytes += len(b'{"requests":[' + b",".join(entries) + b"]}")
                entries = []
        if entries:
            body_bytes += len(b'{"requests":[' + b",".join(entries) + b"]}")
        del entries
    cpu1, wall1 = time.process_time(), time.perf_counter()
    # the results the API would return (untimed): shuffled, every other answer wrong
    with sqlite3.connect(db_path) as db:
        ids = [cid for (cid,) in db.execute("SELECT custom_id FROM requests ORDER BY seq")]
        rows = [r for (r,) in db.execute("SELECT row_id FROM requests ORDER BY seq")]
    answer_of = {json.loads(line)["id"]: json.loads(line)["answer"] for line in open(data, "rb")}
    results = folder / "floor-results.jsonl"
    write_results(results, ids, {c: answer_of[r] for c, r in zip(ids, rows, strict=True)})
    del ids, rows, answer_of
    cpu2, wall2 = time.process_time(), time.perf_counter()
    collected = floor_collect(results, db_path)
    scored = floor_score(data, db_path)
    cpu3, wall3 = time.process_time(), time.perf_counter()
    assert collected == scored == cells, (collected, scored, cells)
    return {
        "cells": cells,
        "body_mb": body_bytes / 1e6,
        "cpu": (cpu1 - cpu0) + (cpu3 - cpu2),
        "wall": (wall1 - wall0) + (wall3 - wall2),
    }


def _du_mb(folder: Path) -> float:
    """Size of a folder's files in MB (0 when it does not exist)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def one_size(tmp: Path, cells: int, repeat: int, poll: float) -> dict[str, Any]:
    folder = tmp / f"cells-{cells}"
    config, _ = make_eval(folder / "eval", cells)
    data = config.parent / "data.jsonl"
    floors = []
    for i in range(repeat):
        work = folder / f"floor-{i}"
        work.mkdir(parents=True)
        floors.append(floor_run(data, work))
        shutil.rmtree(work)
    emulator, url = start_emulator(folder / "emulator.log")
    out: dict[str, Any] = {"cells": cells, "floor": floors, "runs": {}}
    python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    try:
        for i in range(repeat):
            hf = folder / f"hf-{i}"
            env = {
                **os.environ,
                # absolute: the run starts in the eval's folder, not here
                "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in python_path if p),
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "test",
                "HF_DATASETS_CACHE": str(hf),
                "HF_DATASETS_OFFLINE": "1",
            }
            for cache in ("cold", "warm"):  # cold: hf is empty; warm: the cold run filled it
                r = one_run(config, folder / f"run-{i}-{cache}", env, poll)
                if r["done"] != cells or r["scored"] != cells:
                    raise SystemExit(f"incomplete run: {r['done']} done, {r['scored']} scored")
                r["startup"] = startup(r["modules"], env, folder / f"run-{i}-{cache}")
                out["runs"].setdefault(cache, []).append(r)
                shutil.rmtree(folder / f"run-{i}-{cache}" / "results")
            out.setdefault("hf_mb", []).append(_du_mb(hf))
            shutil.rmtree(hf, ignore_errors=True)
    finally:
        stop(emulator)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[100_000], help="multiples of 4")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind per size")
    parser.add_argument("--poll-interval", type=float, default=0.2)
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)

    print("batchmark benchmark: a whole run's own work against the floor of that work")
    print(
        f"eval:     2 variants x 2 models, exact_match; emulator processing 0 s, "
        f"polls every {args.poll_interval:g} s, --no-cache"
    )
    for line in _report.machine_lines(PACKAGES, sqlite=True):
        print(line)

    header = (
        f"{'cells':>9} {'dataset':<7} {'wall':>18} {'start-up':>18} {'own work (CPU)':>18} "
        f"{'floor (CPU)':>18} {'x floor':>18}"
    )
    table_rows = []
    verdicts = []
    below = []
    for cells in args.cells:
        with tempfile.TemporaryDirectory(prefix="batchmark-e2e-floor-") as tmp:
            measured = one_size(Path(tmp), cells, args.repeat, args.poll_interval)
        floor_cpu = [f["cpu"] for f in measured["floor"]]
        floor_best = min(floor_cpu)
        print(
            f"\n{cells:,} cells; floor: {spread(floor_cpu)} s CPU, "
            f"{spread([f['wall'] for f in measured['floor']])} s wall, create bodies "
            f"{measured['floor'][0]['body_mb']:.0f} MB; datasets cache after the cold runs "
            f"{spread(measured['hf_mb'])} MB"
        )
        print(header)
        print("-" * len(header))
        for cache in ("cold", "warm"):
            runs = measured["runs"][cache]
            own = [r["cpu"] - r["startup"]["cpu"] for r in runs]
            ratio = [o / floor_best for o in own]
            cells_row = (
                f"{cells:,}",
                cache,
                spread([r["seconds"] for r in runs]),
                spread([r["startup"]["cpu"] for r in runs]),
                spread(own),
                f"{floor_best:.2f}",
                spread(ratio) + "x",
            )
            print(f"{cells_row[0]:>9} {cache:<7} " + " ".join(f"{c:>18}" for c in cells_row[2:]))
            table_rows.append(cells_row)
            worst = max(ratio)
            verdicts.append(
                f"{cells:,} {cache}: {statistics.median(ratio):.1f}x "
                f"({'met' if worst <= 2.0 else 'not met'})"
            )
            below += [f"{cells:,} {cache}" for r in ratio if r < 1.0]
            failed = {m for r in runs for m in r["startup"]["failed"]}
            if failed:
                print(
                    f"  start-up probe could not import {len(failed)} modules: "
                    f"{', '.join(sorted(failed)[:5])}"
                )
    verdict = (
        "Target (issue 18, own work within 2x of the floor, worst run): "
        + "; ".join(verdicts)
        + "."
    )
    print(verdict)
    if below:
        raise SystemExit("below the floor (ratio < 1.0): " + "; ".join(below))
    if args.readme:
        body = [
            "**A whole run against its floor** (`benchmarks/end_to_end_floor.py`): "
            "`batchmark run --no-cache` of the `floor.py` eval against a `batchmark emulator` "
            f"subprocess (processing 0 s, polls every {args.poll_interval:g} s), "
            f"{args.repeat} runs each with an empty (`cold`) and a filled (`warm`) `datasets` "
            "cache; median (range) in seconds. `start-up` is the CPU time of a fresh process "
            "importing exactly the modules the run imported; `own work` is the run's CPU "
            "time (user + system, all threads) minus that: waits (poll sleeps, HTTP, the "
            "emulator in its own process) cost no CPU. The floor is plain code doing the "
            "run's unavoidable work in one process (render each row and variant once, "
            "canonical JSON, sha256 key, integer-keyed SQLite insert with the ledger's "
            "PRAGMAs, the create bodies; then parse, join, store, exact match and store the "
            "scores), best of its runs; `x floor` = own work / floor.",
            "",
            *_report.table(
                (
                    "cells",
                    "dataset",
                    "wall",
                    "start-up (CPU)",
                    "own work (CPU)",
                    "floor (CPU)",
                    "x floor",
                ),
                table_rows,
            ),
            "",
            verdict,
            "",
            _report.machine_summary(PACKAGES, sqlite=True),
        ]
        path = _report.write_block("end_to_end_floor", body)
        print(f"\nwritten: {path.name}, block end_to_end_floor")
    return None


if __name__ == "__main__":
    main()
