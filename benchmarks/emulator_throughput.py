"""Throughput of the emulator through the real SDK: 100,000 small requests in one batch.

Run: ``python benchmarks/emulator_throughput.py [N]``. Prints requests/second for each
phase (create, finish = poll until ended, stream = read every result line), peak RSS of
this process (SDK client and emulator share it), and the machine.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time

import anthropic

from batchmark.emulator import Emulator

POLL_SECONDS = 0.05


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


def main(n: int = 100_000) -> None:
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
    print(f"requests: {n:,}")
    print(f"create:   {_rate(n, created - started)}")
    print(f"finish:   {_rate(n, finished - created)}")
    print(f"stream:   {_rate(n, streamed - finished)}")
    print(f"total:    {_rate(n, streamed - started)}")
    print(f"peak RSS: {peak_mb:,.0f} MB (SDK client and emulator in one process)")
    print(f"machine:  {platform.platform()}, {os.cpu_count()} CPUs ({platform.machine()})")
    print(f"python:   {platform.python_implementation()} {platform.python_version()}")
    print(f"anthropic {anthropic.__version__}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
