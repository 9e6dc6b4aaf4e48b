"""A million cells end to end: ``batchmark run`` against the emulator, peak RSS by size.

Run: ``python benchmarks/million.py [--cells N ...] [--poll-interval S] [--no-readme]``
(defaults: ``--cells 10000 100000 1000000 --poll-interval 0.5``; issue 18's targets: 10,000
requests under 150 MB, 1,000,000 cells under 300 MB of the harness's peak RSS).

For each size, the ``expand_and_ingest.py`` eval (2 prompt variants x 2 models, so
rows = cells / 4) plus one ``includes`` scorer, ``max_tokens`` 16 and ``batch:
{max_requests: 100000}`` (every batch at once: the default) is written to a temporary folder. Then:

- ``batchmark emulator --port 0 --processing-seconds 0`` starts as its own subprocess
  (its base URL is the first line it prints). It holds every request and result in
  memory, so it grows with the size; that memory is the emulator's, not the harness's,
  and is reported apart.
- ``python -m batchmark run eval.yaml --results DIR -q --poll-interval S`` runs as a
  second subprocess with ``ANTHROPIC_BASE_URL`` pointed at the emulator: expand into the
  ledger, submit 100,000-request batches (all at once), poll, collect, score,
  write ``responses.jsonl`` and ``scores.jsonl``.

Wall time is from process start to exit; peak RSS is the harness's own ``ru_maxrss``
(``os.wait4``). While it runs, its ``VmHWM`` (the peak so far) is sampled from
``/proc`` every 0.2 s, so the peak reached by the end of each phase can be read off the
phase boundaries the run records itself: ``run.json`` ``created_at`` (expansion starts),
the ledger's ``intents`` (each batch just before it was created) and ``ended_at`` (the
result files written). The run is checked complete with ``batchmark status RUN --format
json`` (done == total). Each emulator is stopped through its own process handle.

The figures are printed, then written to the ``million`` block of the README's
performance section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _report
from expand_and_ingest import write_eval

PACKAGES = ("batchmark", "anthropic", "orjson", "datasets", "pyarrow", "uvicorn")
SAMPLE_SECONDS = 0.2


def write_config(folder: Path, cells: int) -> Path:
    """The expand_and_ingest eval, plus one cheap scorer and the batch settings."""
    path = write_eval(folder, cells, epochs=1)
    config = json.loads(path.read_text())
    config["name"] = "million"
    config["params"] = {"max_tokens": 16}
    config["scorers"] = [{"includes": {"target": "{{ answer }}"}}]
    config["batch"] = {"max_requests": 100_000}
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def start_emulator(log: Path) -> tuple[subprocess.Popen[str], str]:
    """``batchmark emulator`` in its own process; its base URL from its first line."""
    cmd = [sys.executable, "-m", "batchmark", "emulator", "--port", "0"]
    cmd += ["--processing-seconds", "0"]
    err = open(log, "wb")  # noqa: SIM115  (closed with the process, below)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    proc.stderr_file = err  # type: ignore[attr-defined]
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        stop(proc)
        raise SystemExit(f"emulator did not print its URL (got {url!r}): {tail(log)}")
    return proc, url


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop one process we started, through its handle (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    getattr(proc, "stderr_file", None) and proc.stderr_file.close()  # type: ignore[attr-defined]


def vm_kb(pid: int, field: str) -> int | None:
    """``VmHWM`` / ``VmRSS`` of a live process in KiB (None once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_harness(
    config: Path, results: Path, env: dict[str, str], poll: float, timeout: float, log: Path
) -> dict[str, Any]:
    """``batchmark run`` in a subprocess: wall time, ``ru_maxrss``, sampled ``VmHWM``."""
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results)]
    cmd += ["-q", "--poll-interval", str(poll)]
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    with open(log, "wb") as out:
        t0 = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=config.parent, env=env, stdout=out, stderr=out)

        def sample() -> None:
            while not done.is_set():
                hwm = vm_kb(proc.pid, "VmHWM")
                if hwm is not None:
                    samples.append((time.time(), hwm))
                if time.perf_counter() - started > timeout:
                    proc.kill()  # our own child, through its handle
                    return
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "t0": t0,
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "rc": proc.returncode,
        "samples": samples,
        "timed_out": seconds > timeout,
    }


def iso_epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def phases(run_dir: Path, r: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(phase, seconds, peak MB by its end) from the run's own records and the samples."""
    info = json.loads((run_dir / "run.json").read_text())
    db = sqlite3.connect(f"file:{run_dir / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        first, last, n = db.execute(
            "SELECT min(created_at), max(created_at), count(*) FROM intents"
        ).fetchone()
    finally:
        db.close()
    end = r["t0"] + r["seconds"]
    marks = [
        ("start-up (interpreter, imports, config)", r["t0"], iso_epoch(info["created_at"])),
        ("expand into ledger", iso_epoch(info["created_at"]), first),
        (f"submit {n} batch{'es' if n != 1 else ''} (collects interleave)", first, last),
        ("poll, collect, score, write files", last, iso_epoch(info["ended_at"])),
        ("exit", iso_epoch(info["ended_at"]), end),
    ]
    out = []
    for label, a, b in marks:
        # the last sample taken before the phase ended (the sampler lags by <= 0.2 s)
        before = [kb for t, kb in r["samples"] if t <= b + SAMPLE_SECONDS]
        peak = (before[-1] if before else 0) / 1024
        if label == "exit":
            peak = r["peak_mb"]
        out.append((label, b - a, peak))
    return out


def status_counts(run_id: str, results: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "batchmark", "status", run_id, "--results", str(results)]
    out = subprocess.run(
        [*cmd, "--format", "json"], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout)


def find_counts(data: Any) -> dict[str, Any]:
    """The first mapping holding both ``done`` and ``total`` in the status JSON."""
    if isinstance(data, dict):
        if "done" in data and "total" in data:
            return data
        values = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return {}
    for value in values:
        found = find_counts(value)
        if found:
            return found
    return {}


def one_size(tmp: Path, cells: int, poll: float, timeout: float) -> dict[str, Any]:
    folder = tmp / f"cells-{cells}"
    config = write_config(folder, cells)
    results = folder / "results"
    emulator, url = start_emulator(folder / "emulator.log")
    try:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": "test",
            "HF_DATASETS_CACHE": str(folder / "hf"),
            "HF_DATASETS_OFFLINE": "1",
        }
        r = run_harness(config, results, env, poll, timeout, folder / "run.log")
        r["emulator_mb"] = (vm_kb(emulator.pid, "VmHWM") or 0) / 1024
    finally:
        stop(emulator)
    r["cells"] = cells
    if r["timed_out"]:
        return r
    if r["rc"] != 0:
        raise SystemExit(f"batchmark run failed ({r['rc']}):\n{tail(folder / 'run.log')}")
    (run_dir,) = [p for p in (results / "million").iterdir() if p.is_dir()]
    r["run_id"] = run_dir.name
    r["phases"] = phases(run_dir, r)
    r["status"] = find_counts(status_counts(run_dir.name, results, env))
    r["ledger_mb"] = (run_dir / "ledger.sqlite").stat().st_size / 1e6
    return r


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument(
        "--timeout", type=float, default=900, help="kill a run after this many seconds"
    )
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)

    print("batchmark benchmark: a million cells end to end against the emulator")
    print(
        "eval:     2 variants x 2 models x rows, one `includes` scorer; batches of 100,000, "
        f"all in flight at once; poll {args.poll_interval:g} s"
    )
    for line in _report.machine_lines(PACKAGES, sqlite=True):
        print(line)
    print(f"load:     {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print()

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="batchmark-million-") as tmp:
        for cells in args.cells:
            r = one_size(Path(tmp), cells, args.poll_interval, args.timeout)
            runs.append(r)
            if r["timed_out"]:
                print(f"{cells:,} cells: killed after {args.timeout:g} s (timeout)\n")
                continue
            s = r["status"]
            print(
                f"{cells:,} cells: run {r['run_id']}, wall {r['seconds']:.1f} s, "
                f"harness peak RSS {r['peak_mb']:,.0f} MB, emulator peak RSS "
                f"{r['emulator_mb']:,.0f} MB, ledger {r['ledger_mb']:,.0f} MB"
            )
            keys = ("state", "total", "done", "failed", "in_flight", "pending")
            print(f"  status: {json.dumps({k: s.get(k) for k in keys})}")
            if s.get("done") != s.get("total") or s.get("total") != cells:
                raise SystemExit(f"run incomplete: {s}")
            for label, seconds, peak in r["phases"]:
                print(f"  {label:<42} {seconds:>8.1f} s   peak so far {peak:>6,.0f} MB")
            print(flush=True)

    done = [r for r in runs if not r["timed_out"]]
    header = (
        f"{'cells':>10} {'done':>10} {'wall s':>8} {'cells/s':>8} {'peak RSS':>9} {'emulator':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for r in done:
        s = r["status"]
        print(
            f"{r['cells']:>10,} {s['done']:>10,} {r['seconds']:>8.1f} "
            f"{r['cells'] / r['seconds']:>8,.0f} {r['peak_mb']:>6,.0f} MB "
            f"{r['emulator_mb']:>6,.0f} MB"
        )
        rows.append(
            (
                f"{r['cells']:,}",
                f"{s['done']:,} / {s['total']:,}",
                f"{r['seconds']:.1f}",
                f"{r['cells'] / r['seconds']:,.0f}",
                f"{r['peak_mb']:,.0f} MB",
                f"{r['emulator_mb']:,.0f} MB",
            )
        )
    notes = []
    if len(done) >= 2:
        small, big = done[0], done[-1]
        notes.append(
            f"{big['cells'] / small['cells']:g}x the cells, "
            f"{big['peak_mb'] / small['peak_mb']:.2f}x the harness's peak RSS "
            f"({small['peak_mb']:,.0f} MB -> {big['peak_mb']:,.0f} MB)."
        )
    for r in done:
        if r["cells"] == 1_000_000:
            met = "met" if r["peak_mb"] < 300 else "not met"
            notes.append(
                f"Target (issue 18): 1,000,000 cells with the harness's peak RSS under 300 MB: "
                f"{met} ({r['peak_mb']:,.0f} MB)."
            )
        if r["cells"] == 10_000:
            met = "met" if r["peak_mb"] < 150 else "not met"
            notes.append(
                f"Target (issue 18): 10,000 requests with the harness's peak RSS under 150 MB: "
                f"{met} ({r['peak_mb']:,.0f} MB)."
            )
    for r in runs:
        if r["timed_out"]:
            notes.append(f"{r['cells']:,} cells: killed after {args.timeout:g} s, no figures.")
    print()
    for note in notes:
        print(note)

    if args.readme:
        body = [
            "**A million cells end to end** (`benchmarks/million.py`): `batchmark run` "
            "(2 variants x 2 models, one `includes` scorer, batches of 100,000 all in "
            f"flight at once, poll {args.poll_interval:g} s) in its own process against "
            "`batchmark emulator --processing-seconds 0` in another; wall time from start "
            "to exit, peak RSS is the harness's own `ru_maxrss` (the emulator's, holding "
            "every request and result, is shown apart).",
            "",
            *_report.table(
                ("cells", "done / total", "wall s", "cells/s", "harness peak RSS", "emulator"),
                rows,
            ),
            "",
        ]
        for r in done:
            parts = "; ".join(
                f"{label} {seconds:.1f} s (peak {peak:,.0f} MB)"
                for label, seconds, peak in r["phases"]
            )
            body.append(f"{r['cells']:,} cells by phase: {parts}.")
            body.append("")
        body += [*notes, "", _report.machine_summary(PACKAGES, sqlite=True)]
        path = _report.write_block("million", body)
        print(f"\nwritten: {path.name}, block million")


if __name__ == "__main__":
    main()
