"""Serving: uvicorn in a background thread (for tests) or in the foreground (the CLI)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from batchmark._errors import EmulatorError

__all__ = ["base_url_of", "bind", "serve_forever", "serve_in_thread"]

STARTUP_TIMEOUT = 10.0


class _QuietCutoffs(logging.Filter):
    """Hides uvicorn's error line for a results stream the emulator cuts off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


_FILTER = _QuietCutoffs()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free port).

    A port in use (or refused) is an ``EmulatorError`` saying what to do instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise _bind_failure(host, port, err) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _bind_failure(host: str, port: int, err: OSError) -> EmulatorError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if err.errno == errno.EADDRINUSE:
        why = f"port {port} is already in use (another emulator, or another server)"
    elif err.errno == errno.EACCES:
        why = f"permission denied (ports below 1024 need privileges): {err.strerror}"
    else:
        why = err.strerror or str(err)
    hint = (
        "--host must be an address of this machine (the default is 127.0.0.1)"
        if err.errno == errno.EADDRNOTAVAIL
        else "pick another port, or `batchmark emulator --port 0` to take a free one (its "
        "base URL is printed first)"
    )
    return EmulatorError(f"the emulator cannot listen on {where}: {why}", hint=hint)


def base_url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: ASGIApp, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        log_config=None,
    )
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(app: ASGIApp, host: str, port: int) -> Iterator[str]:
    """Serve ``app`` in a daemon thread; yield its base URL; stop and join on exit."""
    sock = bind(host, port)
    server = _server(app, "warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="batchmark-emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise EmulatorError("the emulator's server stopped while starting (see above)")
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"the emulator's server did not start within {STARTUP_TIMEOUT:g} s",
                    hint="the machine may be overloaded: try again",
                )
            time.sleep(0.005)
        yield base_url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_forever(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` in this thread until SIGINT or SIGTERM."""
    try:
        _server(app, "info").run(sockets=[sock])
    finally:
        sock.close()
