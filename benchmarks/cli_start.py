"""How fast the command line answers, and how much memory it takes, in fresh processes.

Run: ``python benchmarks/cli_start.py [--repeat N] [--no-readme]`` (default 5). Each
command runs N times as its own process (the console script, as a user types it); the
median and the spread of the wall time and the peak RSS (``ru_maxrss`` of the child)
are printed, then written to the ``cli_start`` block of the README's performance
section (unless ``--no-readme``). Issue 18's target: ``--help`` and ``status`` under
0.3 s wall (median of 5).

The commands: ``--help``; ``status`` of a results root holding one finished quickstart
run (made once, untimed, with ``--emulate``); ``status RUN`` of that run; ``validate``
of the quickstart config (it renders every request, so it loads the config models).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _report

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
TARGET_SECONDS = 0.3
TARGETED = {"--help", "status", "status RUN", "baseline list"}


def _command() -> list[str]:
    """The console script beside this interpreter, else ``python -m batchmark``."""
    script = Path(sys.executable).with_name("batchmark")
    return [str(script)] if script.exists() else [sys.executable, "-m", "batchmark"]


def _run_alone(args: list[str], cwd: Path) -> tuple[float, float]:
    """One process, its wall time and its own peak RSS (``os.wait4``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {err}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    _report.add_readme_flag(parser)
    args = parser.parse_args()
    base = _command()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = work / "results"
        subprocess.run(
            [*base, "run", str(QUICKSTART), "--emulate", "-q", "--results", str(results)],
            check=True,
            capture_output=True,
        )
        (run_id,) = [p.name for p in (results / "quickstart").iterdir()]
        commands = {
            "--help": ["--help"],
            "status": ["status", "--results", str(results)],
            "status RUN": ["status", run_id, "--results", str(results)],
            "baseline list": ["baseline", "list", "--results", str(results)],
            "validate": ["validate", str(QUICKSTART)],
        }
        rows = []
        print(*_report.machine_lines(["anthropic", "click", "rich"]), sep="\n")
        for name, extra in commands.items():
            walls, peaks = [], []
            for _ in range(args.repeat):
                wall, peak = _run_alone([*base, *extra], work)
                walls.append(wall)
                peaks.append(peak)
            median = statistics.median(walls)
            verdict = ""
            if name in TARGETED:
                verdict = "met" if median < TARGET_SECONDS else "NOT met"
            rows.append(
                (
                    f"`batchmark {name}`",
                    f"{median:.3f}",
                    f"{min(walls):.3f}-{max(walls):.3f}",
                    f"{statistics.median(peaks):.0f} MB",
                    f"< {TARGET_SECONDS} s: {verdict}" if verdict else "",
                )
            )
            print(
                f"{name:12} median {median:.3f} s ({min(walls):.3f}-{max(walls):.3f}), "
                f"peak RSS {statistics.median(peaks):.0f} MB {verdict}"
            )
    body = [
        f"**Command-line start** (`benchmarks/cli_start.py`): each command {args.repeat} times "
        "as a fresh process (the console script); median and range of the wall time, median "
        "peak RSS. Commands import only their own module (`--help` and `status` neither the "
        "SDK nor the config models).",
        "",
        *_report.table(["command", "median s", "range s", "peak RSS", "target"], rows),
        "",
        _report.machine_summary(["anthropic", "click", "rich"]),
    ]
    if args.readme:
        _report.write_block("cli_start", body)


if __name__ == "__main__":
    main()
