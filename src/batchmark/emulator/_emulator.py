"""The public face of the emulator: configuration, live knobs, and serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from batchmark.config._models import Catalog, default_catalog
from batchmark.emulator._app import build_app
from batchmark.emulator._batches import BatchStore, SubmittedBatch
from batchmark.emulator._cache import PromptCache
from batchmark.emulator._clock import Clock
from batchmark.emulator._creates import CreateLog
from batchmark.emulator._faults import Faults, FaultState, parse_faults
from batchmark.emulator._models import ModelRules
from batchmark.emulator._ratelimits import RateLimits
from batchmark.emulator._responders import Responder, parse_responder
from batchmark.emulator._seeded import Seeded
from batchmark.emulator._server import base_url_of, bind, serve_forever, serve_in_thread

__all__ = ["Emulator", "serve"]

MAX_BATCH_BYTES = 256 * 1024 * 1024
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class Emulator:
    """A local stand-in for the Messages and Message Batches API.

    ``responder`` picks the answers (a spec string, ``{model glob: spec}``, or a
    callable); ``faults`` what goes wrong (a ``Faults``, a compact string or a mapping);
    ``processing_seconds`` how long a batch takes; ``seed`` makes ids, fault draws and
    result order reproducible (without one, draws use seed 0 and ids are unique to this
    process, as the real service's are); ``batch_ttl_seconds`` when unfinished batches
    expire; ``queue_limit`` (default: none) the most requests unfinished batches may hold
    together: a create that would go past it is refused with 429 ``rate_limit_error``,
    as the real API refuses a full queue of batch requests.
    Attributes ``responder``, ``faults``, ``processing_seconds``, ``batch_ttl_seconds``,
    ``queue_limit``, ``max_batch_bytes``, ``max_message_bytes``, ``cancel_seconds`` and
    ``create_latency`` may be changed on a live emulator; so may ``catalog``, the model
    catalog (default: batchmark's) whose rules it enforces (an unknown model is a 404,
    a request the real API refuses for its model a 400 or an errored batch line).
    ``clock.advance(s)`` moves its time forward. ``creates`` records how batch creates
    arrived, and which the queue refused (for tests); ``rate_limits`` what the
    ``anthropic-ratelimit-*`` headers say.
    """

    def __init__(
        self,
        responder: Any = "echo",
        faults: Faults | str | Mapping[str, Any] | None = None,
        processing_seconds: float = 0.0,
        seed: int | None = None,
        batch_ttl_seconds: float = 86400.0,
        *,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        cancel_seconds: float = 0.0,
        queue_limit: int | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.responder = responder
        self.seeded = Seeded(seed)
        self.clock = Clock()
        self.cache = PromptCache(self.clock.now)
        self.store = BatchStore(self.clock, self.seeded, self.cache)
        self.rules = ModelRules(default_catalog(), self.clock.now)
        self.store.rules = self.rules
        self.catalog = catalog or default_catalog()
        self.fault_state = FaultState(parse_faults(faults), self.seeded)
        self.rate_limits = RateLimits(self.clock.now)
        self.queue_limit = queue_limit
        self.processing_seconds = processing_seconds
        self.batch_ttl_seconds = batch_ttl_seconds
        self.max_batch_bytes = max_batch_bytes
        self.max_message_bytes = max_message_bytes
        self.cancel_seconds = cancel_seconds
        # Real seconds a create waits before committing its batch (other calls are
        # served meanwhile): makes concurrent creates overlap for certain in tests.
        self.create_latency = 0.0
        # Each create that made a batch (headers, body size, timing), and the most
        # creates ever in progress at once.
        self.creates = CreateLog()
        self.app: Starlette = build_app(self)

    @property
    def responder(self) -> Responder:
        """The responder in force; assign a spec, a mapping or a callable to change it."""
        return self._responder

    @responder.setter
    def responder(self, spec: Any) -> None:
        self._responder = parse_responder(spec)

    @property
    def catalog(self) -> Catalog:
        """The model catalog whose rules requests must follow, whose prompt-cache minimums
        apply and whose models ``/v1/models`` lists; assign one to change it."""
        return self.rules.catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self.rules.catalog = value
        self.cache.catalog = value

    @property
    def seed(self) -> int:
        """The seed of ids, fault draws and result order."""
        return self.seeded.seed

    @property
    def faults(self) -> Faults:
        """The faults in force; assign a ``Faults`` (or a spec) to change them live."""
        return self.fault_state.faults

    @faults.setter
    def faults(self, value: Faults | str | Mapping[str, Any] | None) -> None:
        self.fault_state.set(parse_faults(value))

    @property
    def queue_limit(self) -> int | None:
        """The most requests unfinished batches may hold together (None: no limit)."""
        return self._queue_limit

    @queue_limit.setter
    def queue_limit(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"queue_limit must be a whole number or None, not {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"queue_limit must be at least 1, got {value}")
        self._queue_limit = value

    @property
    def cancel_seconds(self) -> float:
        """How long a canceled batch stays ``canceling`` before it ends."""
        return self.store.cancel_seconds

    @cancel_seconds.setter
    def cancel_seconds(self, value: float) -> None:
        self.store.cancel_seconds = value

    @property
    def batches(self) -> Mapping[str, SubmittedBatch]:
        """Every batch ever created (deleted ones too), by id, oldest first."""
        return {b.id: b for b in self.store.submitted()}

    def submitted_custom_ids(self) -> list[str]:
        """The custom_ids of every create so far, in order, repeats across batches kept."""
        return [cid for b in self.store.submitted() for cid in b.custom_ids]

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on ``host:port`` (0: a free port) in a background thread; yield the
        base URL (``http://127.0.0.1:54321``, no trailing slash, no ``/v1``)."""
        with serve_in_thread(self.app, host, port) as base_url:
            yield base_url

    def run(
        self, host: str = "127.0.0.1", port: int = 0, ready: Callable[[str], None] | None = None
    ) -> None:
        """Serve in the foreground until SIGINT or SIGTERM; ``ready(base_url)`` is called
        once the port is bound, before the first request is accepted."""
        sock = bind(host, port)
        if ready is not None:
            ready(base_url_of(sock))
        serve_forever(self.app, sock)


@contextmanager
def serve(
    responder: Any = "echo",
    faults: Faults | str | Mapping[str, Any] | None = None,
    processing_seconds: float = 0.0,
    seed: int | None = None,
    batch_ttl_seconds: float = 86400.0,
    host: str = "127.0.0.1",
    port: int = 0,
    queue_limit: int | None = None,
) -> Iterator[str]:
    """Shorthand: build an ``Emulator`` and serve it; yield its base URL."""
    emu = Emulator(
        responder, faults, processing_seconds, seed, batch_ttl_seconds, queue_limit=queue_limit
    )
    with emu.serve(host=host, port=port) as base_url:
        yield base_url
