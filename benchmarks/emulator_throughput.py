"""Throughput of the emulator through the real SDK: 100,000 small requests in one batch.

Run: ``python benchmarks/emulator_throughput.py [N] [--no-readme]``. Prints requests/second
for each phase (create, finish = poll until ended, stream = read every result line), peak
RSS of this process (SDK client and emulator share it), and the machine, then rewrites the
``emulator_throughput`` block of the README's performance section (unless ``--no-readme``).
"""

from __future__ import annotations

import argparse
import resource
import time

import _report
import anthropic

from batchmark.emulator import Emulator

POLL_SECONDS = 0.05
PACKAGES = ("batchmark", "anthropic", "httpx2", "starlette", "uvicorn", "orjson")


def _requests(n: int) -> list[dict]:
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 32,
                "messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
            },
        }
        for i in range(n)
    ]


def _rate(n: int, seconds: float) -> str:
    return f"{seconds:7.2f} s  {n / seconds:>10,.0f} requests/s"


def readme_block(n: int, phases: list[tuple[str, float]], peak_mb: float) -> list[str]:
    """The README block: one row per phase, then the peak RSS and the machine."""
    rows = [(name, f"{n:,}", f"{s:.2f}", f"{n / s:,.0f}") for name, s in phases]
    return [
        f"**Emulator throughput** (`benchmarks/emulator_throughput.py`): one batch of "
        f"{n:,} small requests through the real SDK to an in-process emulator. `stream` "
        "reads the results with the SDK's `batches.results()`, which builds a pydantic object "
        "per line (batchmark reads the raw lines with orjson instead).",
        "",
        *_report.table(("phase", "requests", "seconds", "requests/s"), rows),
        "",
        f"Peak RSS: {peak_mb:,.0f} MB (SDK client and emulator in one process).",
        "",
        _report.machine_summary(PACKAGES),
    ]


def main(n: int = 100_000, readme: bool = True) -> None:
    """Create, finish and stream one batch of ``n`` requests; print the figures."""
    emu = Emulator(processing_seconds=0.0)
    requests = _requests(n)
    with emu.serve() as base_url, anthropic.Anthropic(base_url=base_url, api_key="bench") as client:
        started = time.perf_counter()
        batch = client.messages.batches.create(requests=requests)
        created = time.perf_counter()
        while batch.processing_status != "ended":
            time.sleep(POLL_SECONDS)
            batch = client.messages.batches.retrieve(batch.id)
        finished = time.perf_counter()
        count = 0
        decoder = client.messages.batches.results(batch.id)
        try:
            for _ in decoder:
                count += 1
        finally:
            decoder.close()
        streamed = time.perf_counter()
    assert count == n, f"streamed {count} of {n} results"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    phases = [
        ("create", created - started),
        ("finish", finished - created),
        ("stream", streamed - finished),
        ("total", streamed - started),
    ]
    print(f"requests: {n:,}")
    for name, seconds in phases:
        print(f"{name + ':':<9} {_rate(n, seconds)}")
    print(f"peak RSS: {peak_mb:,.0f} MB (SDK client and emulator in one process)")
    for line in _report.machine_lines(PACKAGES):
        print(line)
    if readme:
        path = _report.write_block("emulator_throughput", readme_block(n, phases, peak_mb))
        print(f"written:  {path.name}, block emulator_throughput")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="requests in the batch")
    _report.add_readme_flag(parser)
    args = parser.parse_args()
    main(args.n, readme=args.readme)
