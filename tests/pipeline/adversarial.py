"""Helpers for the adversarial pipeline tests (kills, faults, lost answers): bounded waits,
runs in subprocesses to kill -9, reads of a run's ledger, exact accounting of what the
emulator saw, and a loopback front that loses create responses after the batch was made."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import batchmark
from batchmark.emulator._server import serve_in_thread

from .support import LiveEmulator


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds``: a stuck run fails the test
    instead of hanging the suite."""

    def _expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s (stuck?)")

    old = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def start_run(
    config: Path, results: Path, base_url: str, crashpoint: str | None = None, *extra: str
) -> subprocess.Popen[bytes]:
    """`batchmark run CONFIG [EXTRA...]` in a subprocess against ``base_url``."""
    env = {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key"}
    env.pop("BATCHMARK_CRASHPOINT", None)
    if crashpoint:
        env["BATCHMARK_CRASHPOINT"] = crashpoint
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    cmd += extra
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def only_run(results: Path, eval_name: str = "arith") -> batchmark.Run:
    folders = [p for p in results.glob(f"{eval_name}/*") if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return batchmark.open_run(folders[0])


def ledger_rows(run: batchmark.Run, sql: str, args: tuple[Any, ...] = ()) -> list[tuple]:
    db = sqlite3.connect(run.path / "ledger.sqlite")
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def assert_exact_accounting(run: batchmark.Run, live: LiveEmulator) -> None:
    """Every request ended exactly once; attempts == times the server saw it submitted;
    nothing was submitted that the ledger does not account for."""
    status = run.status
    assert status.done + status.failed == status.total, status
    requests = {r["custom_id"]: r for r in run.requests()}
    responses = list(run.responses())
    assert sorted(r["custom_id"] for r in responses) == sorted(requests)
    seen = Counter(live.submitted())
    assert set(seen) <= set(requests)
    for r in responses:
        assert r["attempts"] == seen[r["custom_id"]], (r["custom_id"], r["attempts"])
        if r["status"] == "succeeded":
            assert r["text"], r
        else:
            assert r["error_type"] or r["status"] in ("canceled", "expired"), r


class LoseCreateResponses:
    """ASGI front for an emulator: the first ``n`` batch creates reach the emulator (the
    batch exists) but the client gets a 500 ``api_error`` instead of the answer — what a
    gateway timeout or a crash after the commit looks like to the SDK."""

    def __init__(self, app: ASGIApp, n: int) -> None:
        self.app = app
        self.left = n

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_create = (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/") == "/v1/messages/batches"
        )
        if not is_create or self.left <= 0:
            await self.app(scope, receive, send)
            return
        self.left -= 1

        async def swallow(message: Message) -> None:
            return None  # the emulator's answer is lost

        await self.app(scope, receive, swallow)
        body = orjson.dumps(
            {
                "type": "error",
                "error": {"type": "api_error", "message": "lost after commit (test)"},
                "request_id": "req_lost",
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"request-id", b"req_lost"),
            (b"retry-after-ms", b"5"),
        ]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serve_front(app: ASGIApp) -> Iterator[str]:
    with serve_in_thread(app, "127.0.0.1", 0) as url:
        yield url
