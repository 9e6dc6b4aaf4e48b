"""End to end against the emulator: batchmark and inspect_ai's batch mode, side by side.

Run: ``python benchmarks/end_to_end.py [--requests N] [--repeat R] [--tick S]
[--inspect PATH] [--no-readme]`` (defaults: ``--requests 10000``, ``--repeat 3``,
``--tick 1``, ``--inspect /tmp/inspect-venv/bin/inspect``).

One single-turn task, N rows: the prompt is the row's ``input`` ("Say back: token-i"),
the answer is scored by an exact match against ``target`` (the input itself for even
rows, something else for odd rows: 50% pass). Each harness runs R times, alternating
(batchmark, inspect_ai, batchmark, ...), each run in its own subprocess against its own
fresh emulator (``processing_seconds=0``, ``echo`` responder, served from a thread of
this script on a free port, ``ANTHROPIC_BASE_URL`` pointed at it), with its own results
folder (so no run is served from an earlier run's cache):

- batchmark: ``python -m batchmark run eval.yaml --results DIR -q`` (one variant, one
  model, one ``exact_match`` scorer, default batch settings but ``poll_interval`` =
  ``max_poll_interval`` = the tick): expand, write the ledger, submit, poll, collect,
  score, write the result files.
- inspect_ai: ``inspect eval task.py --model anthropic/claude-haiku-4-5 --batch
  batch.json --max-connections N --display none`` (``generate()`` then ``exact()``;
  batch ``size`` = ``max_size`` = N, ``send_delay`` = ``tick`` = the tick), writing its
  ``.eval`` log as it does by default. inspect_ai lives in its own virtualenv
  (``python3 -m venv /tmp/inspect-venv && /tmp/inspect-venv/bin/pip install
  'inspect_ai>=0.3,<0.4' anthropic``); without it, only batchmark's half is measured
  and the README block says why.

Wall time is from process start to exit (so it includes interpreter start-up and
imports: what a user waits for); peak RSS is the subprocess's own ``ru_maxrss`` (from
``os.wait4``), not the emulator's. Each run is checked: the emulator received exactly N
requests, and the harness's own output holds N scores with a mean of 0.5.

The fixed waits are measured from the server side: each emulator records its batch
calls (creates with their sizes, every poll with the status it answered, results
downloads, on ``time.monotonic()``, the clock the subprocess's start is taken on). A
poll that found a batch still ``in_progress`` is a poll the harness had to repeat after
a wait; the time from a create's answer to the first poll of that batch, when the batch
had already ended (processing 0 s), is a wait the harness imposed on itself. The time to
the first create and from the last results download to exit split the rest.

The figures are printed (median and range over the repeats, the ratios of the medians,
the issue's targets as met / not met), then written to the ``end_to_end`` block of the
README's performance section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _report
import orjson

PACKAGES = ("batchmark", "anthropic", "orjson", "uvicorn")
MODEL = "claude-haiku-4-5"
DEFAULT_INSPECT = "/tmp/inspect-venv/bin/inspect"
FASTER, LEANER = 100, 10  # issue 18's targets: inspect_ai / batchmark, wall and peak RSS
TARGET_REQUESTS = 10_000  # ... for this many requests

BATCHES = "/v1/messages/batches"
RETRIEVE = re.compile(rf"{BATCHES}/([^/]+)")
RESULTS = re.compile(rf"{BATCHES}/([^/]+)/results")

TASK_PY = """\
from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.scorer import exact
from inspect_ai.solver import generate


@task
def say_back():
    return Task(
        dataset=json_dataset("data.jsonl", FieldSpec(input="input", target="target", id="id")),
        solver=generate(),
        scorer=exact(),
    )
"""

# Run in inspect's own interpreter: the mean of the exact() scorer from the newest log.
INSPECT_MEAN = """\
import glob, os, sys
from inspect_ai.log import read_eval_log
path = max(glob.glob(os.path.join(sys.argv[1], "*.eval")), key=os.path.getmtime)
log = read_eval_log(path, header_only=True)
print(log.status, log.results.completed_samples, log.results.scores[0].metrics["mean"].value)
"""


def write_task(folder: Path, n: int, tick: float) -> Path:
    """The dataset, batchmark's config, inspect's task and batch config."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.jsonl", "wb") as fh:
        for i in range(n):
            text = f"Say back: token-{i}"
            row = {"id": f"r{i:06d}", "input": text, "target": text if i % 2 == 0 else "no"}
            fh.write(orjson.dumps(row) + b"\n")
    config = {
        "name": "end_to_end",
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": [{"name": "plain", "user": "{{ input }}"}],
        "models": [MODEL],
        "params": {"max_tokens": 32},
        "epochs": 1,
        "batch": {"poll_interval": tick, "max_poll_interval": tick},
        "scorers": [{"exact_match": {"target": "{{ target }}"}}],
    }
    path = folder / "eval.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    (folder / "task.py").write_text(TASK_PY)
    (folder / "batch.json").write_text(json.dumps(inspect_batch(n, tick)))
    return path


def inspect_batch(n: int, tick: float) -> dict[str, float]:
    """inspect_ai's ``--batch`` settings: one batch of all N, sent after ``send_delay``
    at the latest, checked every ``tick``."""
    return {"size": n, "max_size": n, "send_delay": tick, "tick": tick}


# --- the server side: what each harness asked of its emulator, and when ------------------


@dataclass
class Poll:
    batch_id: str
    started: float
    ended: float
    status: str  # processing_status answered ("" if the call failed)


@dataclass
class Calls:
    """The batch calls one emulator served (``time.monotonic()``)."""

    polls: list[Poll] = field(default_factory=list)
    results: list[tuple[str, float, float]] = field(default_factory=list)  # id, start, end
    other: int = 0


class Recorder:
    """ASGI middleware in front of an emulator's app: records polls (with the
    ``processing_status`` they answered) and results downloads; creates are in the
    emulator's own ``creates`` log."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls = Calls()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        started = time.monotonic()
        results, retrieve = RESULTS.fullmatch(path), RETRIEVE.fullmatch(path)
        body = bytearray()

        async def recording(message: dict[str, Any]) -> None:
            if retrieve and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording)
        ended = time.monotonic()
        if results:
            self.calls.results.append((results[1], started, ended))
        elif retrieve:
            try:
                status = str(orjson.loads(body).get("processing_status", ""))
            except (orjson.JSONDecodeError, AttributeError):
                status = ""
            self.calls.polls.append(Poll(retrieve[1], started, ended, status))
        else:
            self.calls.other += 1


def waits(started: float, exited: float, creates: Sequence[Any], calls: Calls) -> dict[str, Any]:
    """The run's timeline from its emulator's records (seconds from process start)."""
    polls_in_progress = sum(1 for p in calls.polls if p.status == "in_progress")
    after_create = []  # a create's answer -> the first poll of that batch
    for create in creates:
        first = min((p.started for p in calls.polls if p.batch_id == create.batch_id), default=None)
        if first is not None:
            after_create.append(first - create.ended)
    last_results = max((end for _, _, end in calls.results), default=exited)
    return {
        "batches": len(creates),
        "sizes": sorted((c.n_requests for c in creates), reverse=True),
        "polls": len(calls.polls),
        "polls_in_progress": polls_in_progress,
        "after_create": after_create,
        "to_first_create": min(c.started for c in creates) - started,
        "after_results": exited - last_results,
    }


# --- running one harness ---------------------------------------------------------------


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, its own peak RSS and CPU seconds (user + system, all
    threads; os.wait4), exit code, and its start and exit on ``time.monotonic()``."""
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        exited = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": exited - started,
        "peak_mb": usage.ru_maxrss / 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rc": proc.returncode,
        "started": started,
        "exited": exited,
    }


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def batchmark_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(out), "-q"]


def batchmark_scores(out: Path) -> tuple[int, float]:
    from batchmark import open_run

    (run_dir,) = [p for p in (out / "end_to_end").iterdir() if p.is_dir()]
    run = open_run(run_dir)
    (summary,) = run.score_summary()
    return sum(1 for _ in run.scores()), summary.get("mean", summary.get("pass_rate"))


def inspect_cmd(inspect: str, n: int, out: Path) -> list[str]:
    return [
        inspect,
        "eval",
        "task.py",
        "--model",
        f"anthropic/{MODEL}",
        "--batch",
        "batch.json",
        "--max-connections",
        str(n),
        "--display",
        "none",
        "--log-dir",
        str(out),
    ]


def inspect_scores(inspect: str, out: Path) -> tuple[int, float]:
    python = str(Path(inspect).with_name("python"))
    got = subprocess.run(
        [python, "-c", INSPECT_MEAN, str(out)], capture_output=True, text=True, check=True
    )
    status, completed, mean = got.stdout.split()
    if status != "success":
        raise RuntimeError(f"inspect eval ended with status {status}")
    return int(completed), float(mean)


def inspect_version(inspect: str) -> str:
    python = str(Path(inspect).with_name("python"))
    code = "import inspect_ai; print(inspect_ai.__version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


class HarnessFailed(Exception):
    pass


def run_once(
    name: str,
    cmd: list[str],
    scores: Callable[[], tuple[int, float]],
    folder: Path,
    n: int,
    env: dict[str, str],
) -> dict[str, Any]:
    """One run of one harness against a fresh emulator of its own."""
    from batchmark.emulator import Emulator

    emu = Emulator(processing_seconds=0)
    recorder = Recorder(emu.app)
    emu.app = recorder  # serve() serves whatever app the emulator holds
    log = folder.with_suffix(".log")
    with emu.serve() as url:
        r = timed(cmd, folder.parent, {**env, "ANTHROPIC_BASE_URL": url}, log)
    if r["rc"] != 0:
        raise HarnessFailed(f"{name} exited with {r['rc']}:\n{tail(log)}")
    creates = emu.creates.calls
    sent = sum(c.n_requests for c in creates)
    if sent != n:
        raise HarnessFailed(f"{name} sent {sent:,} requests to its emulator, not {n:,}")
    r["scored"], r["mean"] = scores()
    if r["scored"] != n:
        raise HarnessFailed(f"{name} scored {r['scored']:,} requests, not {n:,}")
    r.update(waits(r["started"], r["exited"], creates, recorder.calls))
    return r


# --- the report --------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str) -> tuple[str, str]:
    """Median and range (min–max) as text."""
    lo, hi = min(values), max(values)
    return fmt.format(statistics.median(values)), f"{fmt.format(lo)}–{fmt.format(hi)}"


def wait_text(name: str, runs: list[dict[str, Any]], tick: float, settings: str) -> str:
    """What the emulators saw of this harness's waits, over all its runs."""
    batches = sorted({r["batches"] for r in runs})
    sizes = sorted({s for r in runs for s in r["sizes"]})
    in_progress = [r["polls_in_progress"] for r in runs]
    gaps = [g for r in runs for g in r["after_create"]]
    first = spread([r["to_first_create"] for r in runs], "{:.2f}")[0]
    last = spread([r["after_results"] for r in runs], "{:.2f}")[0]
    if not gaps:
        poll = "no poll seen"
    elif min(gaps) >= 0.9 * tick:  # it slept before polling a batch that had ended
        poll = (
            f"it polled each batch {min(gaps):.2f}–{max(gaps):.2f} s after the create was "
            f"answered, though the batch had ended at once: one {tick:g} s tick waited per batch"
        )
    else:
        poll = (
            f"it polled each batch {min(gaps) * 1000:.0f}–{max(gaps) * 1000:.0f} ms after the "
            "create was answered and found it ended: no tick waited"
        )
    repolls = (
        "no poll found a batch still in progress (no poll interval waited on one)"
        if max(in_progress) == 0
        else f"{min(in_progress)}–{max(in_progress)} polls per run found a batch still in "
        "progress (each followed by a wait)"
    )
    return (
        f"Waits, {name} ({settings}): {'/'.join(map(str, batches))} batch(es) per run "
        f"(sizes {', '.join(f'{s:,}' for s in sizes)}); {poll}; {repolls}. Process start to "
        f"first create {first} s, last results download to exit {last} s (medians)."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each harness")
    parser.add_argument("--tick", type=float, default=1.0, help="poll interval of both, s")
    parser.add_argument("--inspect", default=DEFAULT_INSPECT, help="inspect_ai's `inspect`")
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)
    n, tick = args.requests, args.tick
    if n < 1 or args.repeat < 1 or tick <= 0:
        parser.error("--requests and --repeat must be at least 1, --tick above 0")

    print("batchmark benchmark: end to end against the emulator, batchmark vs inspect_ai")
    print(
        f"task:     {n:,} single-turn requests, one model, exact match; tick {tick:g} s; "
        f"{args.repeat} run(s) of each, each against a fresh emulator"
    )
    for line in _report.machine_lines(PACKAGES):
        print(line)
    load_before = os.getloadavg()
    print(f"load:     {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} (before)")
    print(flush=True)

    runs: dict[str, list[dict[str, Any]]] = {"batchmark": [], "inspect_ai": []}
    missing = "" if Path(args.inspect).exists() else f"`{args.inspect}` not found"
    version = inspect_version(args.inspect) if not missing else ""
    with tempfile.TemporaryDirectory(prefix="batchmark-e2e-") as tmp:
        folder = Path(tmp)
        config = write_task(folder, n, tick)
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": "emulator",
            "HF_DATASETS_CACHE": str(folder / "hf"),
            "HF_DATASETS_OFFLINE": "1",
        }
        for i in range(args.repeat):
            out = folder / f"bm-{i}"
            r = run_once(
                "batchmark",
                batchmark_cmd(config, out),
                lambda out=out: batchmark_scores(out),
                out,
                n,
                env,
            )
            runs["batchmark"].append(r)
            print(
                f"run {i + 1}: batchmark   {r['seconds']:8.2f} s {r['peak_mb']:7,.0f} MB",
                flush=True,
            )
            if missing:
                continue
            out = folder / f"inspect-{i}"
            try:
                r = run_once(
                    "inspect_ai",
                    inspect_cmd(args.inspect, n, out),
                    lambda out=out: inspect_scores(args.inspect, out),
                    out,
                    n,
                    {**env, "INSPECT_LOG_DIR": str(out)},
                )
            except (HarnessFailed, RuntimeError, subprocess.CalledProcessError) as err:
                missing = f"inspect_ai did not complete: {err}"
                continue
            runs["inspect_ai"].append(r)
            print(
                f"run {i + 1}: inspect_ai  {r['seconds']:8.2f} s {r['peak_mb']:7,.0f} MB",
                flush=True,
            )
    load_after = os.getloadavg()
    print(f"load:     {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (after)")
    print()
    if missing:
        runs["inspect_ai"] = []

    header = ("harness", "runs", "scored", "wall s", "wall range", "peak RSS", "RSS range", "mean")
    rows = []
    for name, rs in runs.items():
        if not rs:
            continue
        wall, wall_range = spread([r["seconds"] for r in rs], "{:.2f}")
        rss, rss_range = spread([r["peak_mb"] for r in rs], "{:,.0f}")
        label = name if name == "batchmark" else f"inspect_ai {version}"
        scored = "/".join(sorted({f"{r['scored']:,}" for r in rs}))
        mean = "/".join(sorted({f"{r['mean']:.3f}" for r in rs}))
        rows.append((label, len(rs), scored, wall, wall_range, f"{rss} MB", rss_range, mean))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print(
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print()

    bm_settings = f"poll_interval = max_poll_interval = {tick:g} s"
    ia = inspect_batch(n, tick)
    ia_settings = (
        f"size = max_size = {n:,}, send_delay {ia['send_delay']:g} s, tick {ia['tick']:g} s"
    )
    notes = [wait_text("batchmark", runs["batchmark"], tick, bm_settings)]
    if runs["inspect_ai"]:
        notes.append(wait_text("inspect_ai", runs["inspect_ai"], tick, ia_settings))
        full = all(s == ia["size"] for r in runs["inspect_ai"] for s in r["sizes"])
        notes.append(
            f"By its settings inspect_ai also waits up to one tick ({ia['tick']:g} s) between "
            "the last sample's request and the create (its batch worker takes queued requests "
            "in once per tick), and sends a batch that is not full send_delay "
            f"({ia['send_delay']:g} s) after it began: "
            + (
                f"here every batch was full ({ia['size']:,}), so send_delay did not apply."
                if full
                else "here some batches were sent before they were full."
            )
        )
        bm, ia_runs = runs["batchmark"], runs["inspect_ai"]
        med = statistics.median
        wall = med(r["seconds"] for r in ia_runs) / med(r["seconds"] for r in bm)
        rss = med(r["peak_mb"] for r in ia_runs) / med(r["peak_mb"] for r in bm)
        walls = [a["seconds"] / b["seconds"] for a, b in zip(ia_runs, bm, strict=True)]
        rsses = [a["peak_mb"] / b["peak_mb"] for a, b in zip(ia_runs, bm, strict=True)]
        notes.append(
            f"Ratio of the medians (inspect_ai / batchmark): wall time {wall:.1f}x, peak RSS "
            f"{rss:.1f}x (run by run: {min(walls):.1f}–{max(walls):.1f}x and "
            f"{min(rsses):.1f}–{max(rsses):.1f}x)."
        )
        if n == TARGET_REQUESTS:
            notes.append(
                f"Targets (issue 18), {n:,} requests: at least {FASTER}x faster: "
                f"{'met' if wall >= FASTER else 'not met'} ({wall:.1f}x); at least {LEANER}x "
                f"leaner: {'met' if rss >= LEANER else 'not met'} ({rss:.1f}x)."
            )
        else:
            notes.append(
                f"Targets (issue 18: {FASTER}x faster, {LEANER}x leaner) are set for "
                f"{TARGET_REQUESTS:,} requests: not judged at {n:,}."
            )
    else:
        notes.append(f"No inspect_ai comparison: {missing or 'no run completed'}.")
    notes.append(
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
        f"on {os.cpu_count()} CPUs."
    )
    for note in notes:
        print(note)
        print()

    if args.readme:
        body = [
            "**End to end against the emulator** (`benchmarks/end_to_end.py`): "
            f"{n:,} single-turn requests (one model, `exact_match`); each harness run "
            f"{args.repeat} time(s), alternating, each run in its own subprocess from start "
            "to exit (interpreter start-up, submit, poll, collect, score and write included) "
            "against its own fresh emulator (`processing_seconds=0`, in the benchmark's "
            "process); peak RSS is the harness's own. Median and range over the runs.",
            "",
            *_report.table(header, rows),
            "",
            *[line for note in notes for line in (note, "")],
            _report.machine_summary(PACKAGES),
        ]
        path = _report.write_block("end_to_end", body)
        print(f"written: {path.name}, block end_to_end")


if __name__ == "__main__":
    main()
