"""Speed and memory of the harness's own work: expanding a grid and ingesting results.

Run: ``python benchmarks/expand_and_ingest.py [--cells N ...] [--ingest N] [--epochs E]
[--no-readme]`` (defaults: ``--cells 100000 1000000 --ingest 100000 --epochs 1``).

A synthetic JSONL dataset and a config of 2 prompt variants x 2 models x E epochs are
written to a temporary folder, so cells = rows x 4 x E. Phases:

- ``expand``: ``expand(spec)`` streams every request (load rows, render the Jinja2
  templates, build params, custom_id, cache_key) and each ``entry()`` is serialized
  with orjson, as a batch body would be.
- ``ledger``: the same expansion written into a fresh SQLite ledger, exactly as a run
  does it (``batchmark.runs._driver._insert_requests``: 5,000 rows per transaction).
- ``ingest``: one batch of the ingest size is submitted to an in-process emulator
  (``processing_seconds=0``) through the real SDK; once it has ended, only
  ``BatchRunner.collect`` is timed: the results JSONL streamed through the SDK, each
  line parsed and normalized, responses and states written to the ledger. The emulator
  serves from a thread of the same process, so its share of the work is in the figure.

Modules a phase needs are imported before its clock starts (the CLI's import time
is measured apart, issue 18). Each (phase, size) runs in its own subprocess, so every
peak RSS (``ru_maxrss``) is that phase's own: it includes the interpreter and imports
(the ``baseline`` column is the peak just before the timed work starts, after importing
``datasets``/pyarrow). Flat
peaks across sizes mean streaming works. Every subprocess starts with an empty
``datasets`` cache, so the timed expansion includes converting the JSONL file to Arrow,
as a first run on a new dataset does.

The figures are printed, then written to the ``expand_and_ingest`` block of the README's
performance section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import _report
import orjson

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
SYSTEM = "You answer questions about short passages. Reply with the answer only."
FEWSHOT = [
    {
        "role": "user",
        "content": "Passage: The Loire is the longest river in France.\n"
        "Question: Which is the longest river in France?",
    },
    {"role": "assistant", "content": "The Loire"},
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- set-up (parent process) -------------------------------------------------------------


def write_eval(folder: Path, cells: int, epochs: int) -> Path:
    """A dataset of ceil(cells / (4 x epochs)) rows and a config beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = -(-cells // (4 * epochs))
    with open(folder / "data.jsonl", "wb") as fh:
        for i in range(rows):
            row = {
                "id": f"r{i:07d}",
                "passage": f"Item {i} was catalogued in {1900 + i % 120} by archive "
                f"{i % 37} under shelf {i % 1013}; it weighs {i % 97} kg.",
                "question": f"In which year was item {i} catalogued?",
                "answer": str(1900 + i % 120),
            }
            fh.write(orjson.dumps(row) + b"\n")
    variants = [
        {
            "name": "plain",
            "system": SYSTEM,
            "user": "Passage: {{ passage }}\nQuestion: {{ question }}",
        },
        {
            "name": "fewshot",
            "system": SYSTEM,
            "messages": [
                *FEWSHOT,
                {"role": "user", "content": "Passage: {{ passage }}\nQuestion: {{ question }}"},
            ],
        },
    ]
    config = {
        "name": "bench",
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": variants,
        "models": list(MODELS),
        "params": {"max_tokens": 32},
        "epochs": epochs,
    }
    path = folder / "eval.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


# --- the phases (each in its own subprocess) ---------------------------------------------


def _expand_into(ledger: Any, spec: Any) -> None:
    """Write the grid into a ledger as ``batchmark run`` does (no response cache)."""
    from batchmark.runs._driver import _insert_requests
    from batchmark.runs._grid import expand

    _insert_requests(ledger, expand(spec), None, file=str(spec.path))


def phase_expand(config: Path) -> dict:
    from batchmark.config._schema import load_config
    from batchmark.runs._grid import expand

    spec = load_config(config)
    baseline = _peak_mb()
    dumps = orjson.dumps
    cells = nbytes = 0
    started = time.perf_counter()
    for request in expand(spec):
        nbytes += len(dumps(request.entry()))
        cells += 1
    seconds = time.perf_counter() - started
    return {"cells": cells, "seconds": seconds, "baseline_mb": baseline, "bytes": nbytes}


def phase_ledger(config: Path) -> dict:
    import batchmark.runs._driver  # noqa: F401  (its imports are not the phase's work: before the clock)
    from batchmark.config._schema import load_config
    from batchmark.runs._ledger import Ledger

    spec = load_config(config)
    ledger = Ledger(config.parent / "ledger-expand.sqlite")
    baseline = _peak_mb()
    started = time.perf_counter()
    try:
        _expand_into(ledger, spec)
        seconds = time.perf_counter() - started
        cells = ledger.total_requests()
    finally:
        ledger.close()
    size = (config.parent / "ledger-expand.sqlite").stat().st_size
    return {"cells": cells, "seconds": seconds, "baseline_mb": baseline, "bytes": size}


def phase_ingest(config: Path) -> dict:
    import batchmark.runs._driver  # noqa: F401  (its imports are not the phase's work: before the clock)
    from batchmark.config._schema import BatchConfig, load_config
    from batchmark.emulator import Emulator
    from batchmark.runs._backend import AnthropicBackend
    from batchmark.runs._batches import BatchRunner
    from batchmark.runs._endpoint import Endpoint
    from batchmark.runs._ledger import Ledger

    spec = load_config(config)
    ledger = Ledger(config.parent / "ledger-ingest.sqlite")
    settings = BatchConfig(max_requests=100_000, poll_interval=0.01, max_poll_interval=0.05)
    try:
        _expand_into(ledger, spec)
        with Emulator(processing_seconds=0).serve() as url:
            endpoint = Endpoint.resolve(emulate=False, base_url=url, api_key="x", config=spec)
            client = endpoint.client()
            runner = BatchRunner(ledger, AnthropicBackend(client), settings, cache=None)
            started = time.perf_counter()
            runner.submit_available()
            submitted = time.perf_counter()
            (batch,) = ledger.open_batches()
            batch_id = batch["batch_id"]
            while runner.backend.check(batch_id).status != "ended":
                time.sleep(settings.poll_interval)
            baseline = _peak_mb()
            collecting = time.perf_counter()
            runner.collect(batch_id)
            seconds = time.perf_counter() - collecting
            client.close()
        states = ledger.state_counts()
    finally:
        ledger.close()
    assert states == {"done": states.get("done", 0)} and states["done"] > 0, states
    return {
        "cells": states["done"],
        "seconds": seconds,
        "baseline_mb": baseline,
        "submit_seconds": submitted - started,
    }


PHASES = {"expand": phase_expand, "ledger": phase_ledger, "ingest": phase_ingest}


def child(phase: str, config: Path) -> None:
    import datasets  # noqa: F401  (imported before the baseline: pyarrow alone is ~100 MB)

    result = PHASES[phase](config)
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def run_child(phase: str, config: Path) -> dict:
    """Run one phase in a fresh interpreter with its own, empty ``datasets`` cache."""
    return _report.run_phase(__file__, phase, config, config.parent / f"hf-{phase}")


# --- report ------------------------------------------------------------------------------


PACKAGES = (
    "batchmark",
    "anthropic",
    "httpx2",
    "pydantic",
    "jinja2",
    "orjson",
    "uvicorn",
    "datasets",
    "pyarrow",
)


PHASE_LABELS = {
    "expand": "expand + serialize",
    "ledger": "expand into ledger",
    "ingest": "collect (ingest)",
}


def readme_block(epochs: int, results: list[tuple[str, dict]]) -> list[str]:
    """The README block: one row per (phase, size), the ledger sizes, the machine."""
    rows = [
        (
            PHASE_LABELS[phase],
            f"{r['cells']:,}",
            f"{r['seconds']:.2f}",
            f"{r['cells'] / r['seconds']:,.0f}",
            f"{r['baseline_mb']:,.0f} MB",
            f"{r['peak_mb']:,.0f} MB",
        )
        for phase, r in results
    ]
    header = ("phase", "cells", "seconds", "cells/s", "baseline RSS", "peak RSS")
    body = [
        "**Grid expansion and result ingestion** (`benchmarks/expand_and_ingest.py`): "
        f"2 prompt variants x 2 models x {epochs} epoch(s); each phase and size in a fresh "
        "process (peak RSS includes the interpreter and `datasets`/pyarrow, see `baseline`).",
        "",
        *_report.table(header, rows),
        "",
    ]
    ledgers = [
        f"{r['cells']:,} cells: {r['bytes'] / 1e6:,.1f} MB"
        for phase, r in results
        if phase == "ledger"
    ]
    if ledgers:
        body.append("Ledger file after expansion (SQLite): " + "; ".join(ledgers) + ".")
    for phase, r in results:
        if phase == "ingest":
            body.append(
                f"Submitting the {r['cells']:,}-request batch before `collect` took "
                f"{r['submit_seconds']:.2f} s (not in the table)."
            )
    return [*body, "", _report.machine_summary(PACKAGES, sqlite=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ingest", type=int, default=100_000, help="0 skips the phase")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("PHASE", "CONFIG"), help=argparse.SUPPRESS)
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.ingest > 100_000:
        parser.error("--ingest is at most 100000 (one batch)")

    print("batchmark benchmark: grid expansion and result ingestion")
    print(f"grid:     2 variants x 2 models x {args.epochs} epoch(s); cells = rows x 4 x epochs")
    for line in _report.machine_lines(PACKAGES, sqlite=True):
        print(line)
    print()
    columns = ("cells", 10), ("seconds", 9), ("cells/s", 10), ("baseline", 9), ("peak RSS", 9)
    header = f"{'phase':<20} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    plan = [(phase, n) for n in args.cells for phase in ("expand", "ledger")]
    if args.ingest:
        plan.append(("ingest", args.ingest))
    notes = []
    results: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="batchmark-bench-") as tmp:
        configs: dict[int, Path] = {}
        for phase, n in plan:
            if n not in configs:
                configs[n] = write_eval(Path(tmp) / f"cells-{n}", n, args.epochs)
            r = run_child(phase, configs[n])
            results.append((phase, r))
            print(
                f"{PHASE_LABELS[phase]:<20} {r['cells']:>10,} {r['seconds']:>9.2f} "
                f"{r['cells'] / r['seconds']:>10,.0f} {r['baseline_mb']:>6,.0f} MB "
                f"{r['peak_mb']:>6,.0f} MB",
                flush=True,
            )
            if phase == "expand":
                notes.append(f"expand {r['cells']:,}: {r['bytes'] / 1e6:,.1f} MB of batch entries")
            elif phase == "ledger":
                notes.append(f"ledger {r['cells']:,}: {r['bytes'] / 1e6:,.1f} MB SQLite file")
            else:
                notes.append(
                    f"ingest {r['cells']:,}: submit (create one batch) took "
                    f"{r['submit_seconds']:.2f} s, not in the figure above"
                )
    print()
    for note in notes:
        print(note)
    if args.readme:
        path = _report.write_block("expand_and_ingest", readme_block(args.epochs, results))
        print(f"\nwritten: {path.name}, block expand_and_ingest")


if __name__ == "__main__":
    main()
