"""End to end against the emulator: batchmark and inspect_ai's batch mode, side by side.

Run: ``python benchmarks/end_to_end.py [--requests N] [--inspect PATH] [--no-readme]``
(defaults: ``--requests 10000``, ``--inspect /tmp/inspect-venv/bin/inspect``).

One single-turn task, N rows: the prompt is the row's ``input`` ("Say back: token-i"),
the answer is scored by an exact match against ``target`` (the input itself for even
rows, something else for odd rows: 50% pass). One emulator (``processing_seconds=0``,
``echo`` responder) serves from a thread of this script on a free port; each harness
runs in its own subprocess with ``ANTHROPIC_BASE_URL`` pointed at it:

- batchmark: ``python -m batchmark run eval.yaml --results DIR -q`` (one variant, one
  model, one ``exact_match`` scorer; ``batch.poll_interval`` = ``max_poll_interval`` =
  the tick): expand, write the ledger, submit, poll, collect, score.
- inspect_ai: ``inspect eval task.py --model anthropic/claude-haiku-4-5 --batch
  batch.json --max-connections N --display none`` (``generate()`` then ``exact()``;
  batch ``size`` = ``max_size`` = N, ``send_delay`` = ``tick`` = the tick), writing its
  ``.eval`` log as it does by default. inspect_ai lives in its own virtualenv
  (``python3 -m venv /tmp/inspect-venv && /tmp/inspect-venv/bin/pip install
  'inspect_ai>=0.3,<0.4'``); without it, only batchmark's half is measured and the
  README block says why.

Wall time is from process start to exit (so it includes interpreter start-up and
imports: what a user waits for); peak RSS is the subprocess's own ``ru_maxrss`` (from
``os.wait4``), not the emulator's. Both harnesses wait at least one tick for the batch to
end, so the tick (default 1 s) is in both figures. The figures are printed, then written
to the ``end_to_end`` block of the README's performance section (``--no-readme`` skips
that).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report
import orjson

PACKAGES = ("batchmark", "anthropic", "orjson", "uvicorn")
MODEL = "claude-haiku-4-5"
DEFAULT_INSPECT = "/tmp/inspect-venv/bin/inspect"

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
    batch = {"size": n, "max_size": n, "send_delay": tick, "tick": tick}
    (folder / "batch.json").write_text(json.dumps(batch))
    return path


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, its own peak RSS and CPU seconds (user + system, all
    threads; os.wait4), exit code."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rc": proc.returncode,
    }


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_batchmark(folder: Path, config: Path, env: dict[str, str]) -> dict[str, Any]:
    from batchmark import open_run

    results = folder / "bm-results"
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    r = timed(cmd, folder, env, folder / "bm.log")
    if r["rc"] != 0:
        raise SystemExit(f"batchmark run failed ({r['rc']}):\n{tail(folder / 'bm.log')}")
    (run_dir,) = [p for p in (results / "end_to_end").iterdir() if p.is_dir()]
    run = open_run(run_dir)
    (summary,) = run.score_summary()
    r["scored"] = sum(1 for s in run.scores())
    r["mean"] = summary.get("mean", summary.get("pass_rate"))
    return r


def run_inspect(folder: Path, inspect: str, n: int, env: dict[str, str]) -> dict[str, Any]:
    logs = folder / "inspect-logs"
    cmd = [
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
        str(logs),
    ]
    r = timed(cmd, folder, env, folder / "inspect.log")
    if r["rc"] != 0:
        raise RuntimeError(f"inspect eval failed ({r['rc']}): {tail(folder / 'inspect.log', 5)}")
    python = str(Path(inspect).with_name("python"))
    out = subprocess.run(
        [python, "-c", INSPECT_MEAN, str(logs)], capture_output=True, text=True, check=True
    )
    status, completed, mean = out.stdout.split()
    if status != "success":
        raise RuntimeError(f"inspect eval ended with status {status}")
    r["scored"] = int(completed)
    r["mean"] = float(mean)
    r["version"] = subprocess.run(
        [python, "-c", "import inspect_ai; print(inspect_ai.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return r


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--tick", type=float, default=1.0, help="poll interval of both, s")
    parser.add_argument("--inspect", default=DEFAULT_INSPECT, help="inspect_ai's `inspect`")
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)
    n = args.requests

    from batchmark.emulator import Emulator

    print("batchmark benchmark: end to end against the emulator, batchmark vs inspect_ai")
    print(f"task:     {n:,} single-turn requests, one model, exact match; tick {args.tick} s")
    for line in _report.machine_lines(PACKAGES):
        print(line)
    print()

    results: dict[str, dict[str, Any]] = {}
    missing = ""
    with tempfile.TemporaryDirectory(prefix="batchmark-e2e-") as tmp:
        folder = Path(tmp)
        config = write_task(folder, n, args.tick)
        with Emulator(processing_seconds=0).serve() as url:
            env = {
                **os.environ,
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "emulator",
                "HF_DATASETS_CACHE": str(folder / "hf"),
                "HF_DATASETS_OFFLINE": "1",
                "INSPECT_LOG_DIR": str(folder / "inspect-logs"),
            }
            results["batchmark"] = run_batchmark(folder, config, env)
            if not Path(args.inspect).exists():
                missing = f"`{args.inspect}` not found (inspect_ai is not installed there)"
            else:
                try:
                    results["inspect_ai"] = run_inspect(folder, args.inspect, n, env)
                except (RuntimeError, subprocess.CalledProcessError, ValueError) as err:
                    missing = f"inspect_ai did not complete: {err}"

    header = (
        f"{'harness':<22} {'requests':>9} {'wall s':>8} {'req/s':>8} {'peak RSS':>9} {'mean':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name, r in results.items():
        label = name if name == "batchmark" else f"inspect_ai {r['version']}"
        print(
            f"{label:<22} {r['scored']:>9,} {r['seconds']:>8.2f} {n / r['seconds']:>8,.0f} "
            f"{r['peak_mb']:>6,.0f} MB {r['mean']:>6.3f}"
        )
        rows.append(
            (
                label,
                f"{r['scored']:,}",
                f"{r['seconds']:.2f}",
                f"{n / r['seconds']:,.0f}",
                f"{r['peak_mb']:,.0f} MB",
                f"{r['mean']:.3f}",
            )
        )
    print()
    notes = []
    if "inspect_ai" in results:
        bm, ia = results["batchmark"], results["inspect_ai"]
        wall, rss = ia["seconds"] / bm["seconds"], ia["peak_mb"] / bm["peak_mb"]
        notes.append(
            f"Ratio (inspect_ai / batchmark): wall time {wall:.1f}x, peak RSS {rss:.1f}x. "
            f"Both wall times include waiting on {args.tick:g} s poll ticks."
        )
        met = "met" if wall >= 20 else "not met"
        notes.append(
            f"Target (issue 7): batchmark at least 20x faster than inspect_ai: {met} ({wall:.1f}x)."
        )
    else:
        notes.append(f"No inspect_ai comparison: {missing}.")
    for note in notes:
        print(note)

    if args.readme:
        body = [
            "**End to end against the emulator** (`benchmarks/end_to_end.py`): "
            f"{n:,} single-turn requests (one model, `exact_match`), emulator with "
            f"`processing_seconds=0` in the benchmark's process; each harness in its own "
            f"subprocess from start to exit (submit to scored table, interpreter start-up "
            f"included), polling every {args.tick:g} s; peak RSS is the harness's own.",
            "",
            *_report.table(("harness", "scored", "wall s", "requests/s", "peak RSS", "mean"), rows),
            "",
            *notes,
            "",
            _report.machine_summary(PACKAGES),
        ]
        path = _report.write_block("end_to_end", body)
        print(f"\nwritten: {path.name}, block end_to_end")


if __name__ == "__main__":
    main()
