"""Fault injection: what can go wrong, how to say it, and the seeded decisions.

A ``Faults`` value is immutable; an emulator holds one at a time and a test swaps it
(``emu.faults = Faults(http_429_next=2)``). Rates are seeded draws, so a run is
reproducible; ``*_next`` counts fail the next N matching calls after the faults were set,
which makes "fail twice, then recover" tests exact.

``FaultState.fired`` counts what was injected, by fault name (the field names of
``Faults``: ``http_529``, ``drop_results``, ``errored``, ...), so a test can prove its
fault happened rather than assume it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from batchmark._errors import ConfigError
from batchmark.emulator._seeded import Seeded

__all__ = [
    "ENDPOINTS",
    "HTTP_FAULTS",
    "BatchFaults",
    "FaultState",
    "Faults",
    "parse_faults",
    "request_fault",
]

ENDPOINTS = (
    "messages",
    "count_tokens",
    "create",
    "list",
    "retrieve",
    "cancel",
    "delete",
    "results",
)
"""The endpoint groups HTTP faults can be restricted to."""

HTTP_FAULTS: dict[int, tuple[str, str]] = {
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (emulated)."),
    500: ("api_error", "Internal server error (emulated)."),
    529: ("overloaded_error", "Overloaded (emulated)."),
}


@dataclass(frozen=True)
class Faults:
    """The faults an emulator injects; all off by default."""

    http_429: float = 0.0
    """Probability that a call answers 429 ``rate_limit_error``."""
    http_500: float = 0.0
    """Probability that a call answers 500 ``api_error``."""
    http_529: float = 0.0
    """Probability that a call answers 529 ``overloaded_error``."""
    http_429_next: int = 0
    """The next N matching calls answer 429 (counted from when these faults were set)."""
    http_500_next: int = 0
    """The next N matching calls answer 500."""
    http_529_next: int = 0
    """The next N matching calls answer 529."""
    endpoints: frozenset[str] = field(default_factory=lambda: frozenset(ENDPOINTS))
    """Endpoint groups the HTTP faults apply to (see ``ENDPOINTS``)."""
    retry_after: int = 1
    """``retry-after`` of an injected 429, in whole seconds as the real API sends it (the
    SDK waits that long; 0 makes it fall back to its own backoff, 0.5 s doubling)."""
    retry_after_ms: int | None = None
    """If set, every injected HTTP error also carries ``retry-after-ms``, which the SDK
    reads before ``retry-after``: retries in milliseconds, for tests. The real API is not
    known to send it."""
    errored: float = 0.0
    """Fraction of batch requests that end ``errored`` with a retryable type
    (``overloaded_error`` or ``api_error``)."""
    errored_fatal: float = 0.0
    """Fraction of batch requests that end ``errored`` with ``invalid_request_error``."""
    expired: float = 0.0
    """Fraction of batch requests that end ``expired`` (reported when the batch ends)."""
    drop_results: float = 0.0
    """Probability that a results download is cut off mid-stream."""
    drop_results_next: int = 0
    """The next N results downloads are cut off mid-stream."""
    drop_after_lines: int | None = None
    """Result lines sent before a cut (default: half of them, rounded down)."""
    not_found_after_create: int = 0
    """Each new batch answers 404 to its first N retrieve/results calls (SDK issue #1432)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", frozenset(self.endpoints))
        problems = list(_problems(self))
        if problems:
            bad_endpoint = any(p.startswith("faults.endpoints") for p in problems)
            hint = f"valid endpoints: {', '.join(ENDPOINTS)}" if bad_endpoint else None
            raise ConfigError(None, problems, hint=hint)

    @property
    def any_http(self) -> bool:
        """Whether any HTTP fault is configured."""
        return any(
            getattr(self, f"http_{s}") or getattr(self, f"http_{s}_next") for s in HTTP_FAULTS
        )


@dataclass(frozen=True)
class BatchFaults(Faults):
    """The faults a batch was created under, tied to the ``FaultState`` that counts the
    request outcomes they inject (``request_fault`` is decided when the batch settles,
    long after the create)."""

    state: FaultState | None = field(default=None, compare=False, repr=False)


def _problems(faults: Faults) -> Iterable[str]:
    for f in fields(faults):
        value = getattr(faults, f.name)
        if f.type == "float" and not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            yield f"faults.{f.name}: must be a number between 0 and 1, got {value!r}"
        if f.type == "int" and not (isinstance(value, int) and value >= 0):
            yield f"faults.{f.name}: must be a whole number >= 0, got {value!r}"
    if faults.http_429 + faults.http_500 + faults.http_529 > 1.0:
        yield "faults: http_429 + http_500 + http_529 must not exceed 1"
    if faults.errored + faults.errored_fatal + faults.expired > 1.0:
        yield "faults: errored + errored_fatal + expired must not exceed 1"
    unknown = sorted(faults.endpoints - set(ENDPOINTS))
    if unknown:
        yield f"faults.endpoints: unknown endpoint group(s) {', '.join(unknown)}"
    for name in ("drop_after_lines", "retry_after_ms"):
        value = getattr(faults, name)
        if value is not None and not (isinstance(value, int) and value >= 0):
            yield f"faults.{name}: must be a whole number >= 0, got {value!r}"


_FIELD_TYPES = {f.name: f.type for f in fields(Faults)}


def parse_faults(spec: str | Mapping[str, Any] | Faults | None) -> Faults:
    """Faults from a compact string, a mapping (from YAML), a YAML file path, or None.

    The string form is comma-separated ``key=value`` pairs with the field names of
    ``Faults``; ``endpoints`` lists groups joined by ``+``. Example:
    ``"http_429=0.1,http_529_next=2,endpoints=create+retrieve,errored=0.05"``.
    Raises ``ConfigError`` naming the bad key or value.
    """
    if spec is None or isinstance(spec, Faults):
        return spec or Faults()
    if isinstance(spec, str):
        if spec.endswith((".yaml", ".yml", ".json")) and Path(spec).is_file():
            return _from_file(Path(spec))
        return _from_mapping(_split_compact(spec), source=spec)
    return _from_mapping(spec, source=None)


def _from_file(path: Path) -> Faults:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(str(path), f"cannot read faults: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError(str(path), "faults must be a mapping of fault names to values")
    try:
        return _from_mapping(data, source=None)
    except ConfigError as err:
        raise ConfigError(str(path), err.errors, err.hint) from err


def _split_compact(spec: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(None, f"faults {spec!r}: expected key=value, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _from_mapping(data: Mapping[str, Any], source: str | None) -> Faults:
    where = f"faults {source!r}: " if source else "faults: "
    values: dict[str, Any] = {}
    for key, raw in data.items():
        kind = _FIELD_TYPES.get(key)
        if kind is None:
            valid = ", ".join(_FIELD_TYPES)
            raise ConfigError(None, f"{where}unknown fault {key!r}", hint=f"valid: {valid}")
        try:
            values[key] = _convert(kind, raw)
        except (TypeError, ValueError) as err:
            raise ConfigError(None, f"{where}{key}: cannot read {raw!r} ({err})") from err
    return Faults(**values)


def _convert(kind: str, raw: Any) -> Any:
    if kind == "float":
        return float(raw)
    if kind in ("int", "int | None"):
        if isinstance(raw, float) or (isinstance(raw, str) and not raw.strip().isdigit()):
            raise ValueError("expected a whole number")
        return int(raw)
    names = raw.split("+") if isinstance(raw, str) else list(raw)
    return frozenset(n.strip() for n in names if n.strip())


class FaultState:
    """The live faults of one emulator, the counters behind ``*_next`` and rates, and the
    count of every fault injected so far (``fired``)."""

    def __init__(self, faults: Faults, seeded: Seeded) -> None:
        self._seeded = seeded
        self._lock = threading.Lock()
        self._fired: Counter[str] = Counter()
        self.set(faults)

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    @property
    def fired(self) -> Counter[str]:
        """How many times each fault was injected since the emulator started (a copy):
        ``http_429`` / ``http_500`` / ``http_529`` per call answered with that status,
        ``drop_results`` per cut download, ``not_found_after_create`` per transient 404,
        ``errored`` / ``errored_fatal`` / ``expired`` per request outcome. Swapping the
        faults does not reset it."""
        with self._lock:
            return Counter(self._fired)

    def count(self, name: str) -> None:
        """Record one injection of the fault ``name``."""
        with self._lock:
            self._fired[name] += 1

    def for_batch(self) -> BatchFaults:
        """The faults in force, for a batch being created: its request outcomes are
        counted here when it settles."""
        return self._batch_faults

    def set(self, faults: Faults) -> None:
        """Replace the faults and restart the ``*_next`` countdowns."""
        values = {f.name: getattr(faults, f.name) for f in fields(Faults)}
        with self._lock:
            self._faults = faults
            self._batch_faults = BatchFaults(**values, state=self)
            self._left = Counter(
                {s: getattr(faults, f"http_{s}_next") for s in HTTP_FAULTS}
                | {"drop": faults.drop_results_next}
            )
            self._calls: Counter[str] = Counter()

    def http_status(self, endpoint: str) -> int | None:
        """The HTTP error status to inject for this call to ``endpoint``, if any."""
        status = self._http_status(endpoint)
        if status is not None:
            self.count(f"http_{status}")
        return status

    def _http_status(self, endpoint: str) -> int | None:
        with self._lock:
            faults = self._faults
            if not faults.any_http or endpoint not in faults.endpoints:
                return None
            for status in HTTP_FAULTS:
                if self._left[status] > 0:
                    self._left[status] -= 1
                    return status
            self._calls[endpoint] += 1
            draw = self._seeded.fraction("http", endpoint, self._calls[endpoint])
        threshold = 0.0
        for status in HTTP_FAULTS:
            threshold += getattr(faults, f"http_{status}")
            if draw < threshold:
                return status
        return None

    def drop_results(self, batch_id: str) -> bool:
        """Whether this results download is to be cut off mid-stream."""
        drop = self._drop_results(batch_id)
        if drop:
            self.count("drop_results")
        return drop

    def _drop_results(self, batch_id: str) -> bool:
        with self._lock:
            if self._left["drop"] > 0:
                self._left["drop"] -= 1
                return True
            self._calls["results-drop"] += 1
            count = self._calls["results-drop"]
            rate = self._faults.drop_results
        return rate > 0 and self._seeded.fraction("drop", batch_id, count) < rate


def request_fault(faults: Faults, seeded: Seeded, batch_id: str, custom_id: str) -> str | None:
    """The injected outcome of one batch request, or None for no fault.

    Returns ``"expired"`` or the error type of an ``errored`` result. The draw depends on
    the batch id, so the same request resubmitted in a new batch gets a fresh chance.
    ``BatchFaults`` count the outcome they inject in their ``FaultState``.
    """
    fault, outcome = _request_fault(faults, seeded, batch_id, custom_id)
    if fault is not None and isinstance(faults, BatchFaults) and faults.state is not None:
        faults.state.count(fault)
    return outcome


def _request_fault(
    faults: Faults, seeded: Seeded, batch_id: str, custom_id: str
) -> tuple[str | None, str | None]:
    """(the name of the fault, the outcome it injects), or (None, None)."""
    if not (faults.errored or faults.errored_fatal or faults.expired):
        return None, None  # no draw could inject one (draws are pure: skipping changes none)
    draw = seeded.fraction("outcome", batch_id, custom_id)
    if draw < faults.errored:
        flip = seeded.fraction("retryable-type", batch_id, custom_id)
        return "errored", "overloaded_error" if flip < 0.5 else "api_error"
    if draw < faults.errored + faults.errored_fatal:
        return "errored_fatal", "invalid_request_error"
    if draw < faults.errored + faults.errored_fatal + faults.expired:
        return "expired", "expired"
    return None, None
