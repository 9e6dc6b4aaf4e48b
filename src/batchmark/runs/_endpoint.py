"""Where a command's requests go: one ``Endpoint``, resolved once per command.

``Endpoint.resolve`` is the one place that reads the command's flags (``--emulate``,
``--base-url``, an ``api_key`` argument), the environment (``ANTHROPIC_BASE_URL``,
``ANTHROPIC_API_KEY``), the config (``api_version``, the ``emulator:`` section) and, for
a run that exists, what its run.json recorded::

    a new run         --emulate > --base-url > ANTHROPIC_BASE_URL > the real API
    an existing run   emulated as recorded; --base-url > the recorded URL > (recorded:
                      the real API) ANTHROPIC_BASE_URL > the real API
    the key           the api_key argument > ANTHROPIC_API_KEY (emulated: none needed)

Everything else takes the ``Endpoint``: its ``name`` names the response cache and the
cross-run registry (``cache_path``, ``claims_path``), ``client()`` builds the SDK client
with the settings every command shares, and ``serving()`` starts the in-process emulator
of an emulated endpoint (stopped when the block ends).

What is written down of an endpoint (``record()``, in run.json) is its name, its URL
without credentials and whether it is emulated: never the key (only where it comes from,
``key_source``), never the user info or query values of a URL (``redact_url``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batchmark._errors import CredentialsError, UsageError
from batchmark.config._models import Catalog
from batchmark.config._schema import EmulatorConfig, EvalConfig, RunSettings
from batchmark.runs._claims import claims_path
from batchmark.runs._store import cache_path

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "EMULATOR",
    "MAX_RETRIES",
    "REAL_API",
    "REDACTED",
    "Endpoint",
    "endpoint_name",
    "redact_url",
]

MAX_RETRIES = 4
"""The SDK's retries of 408/409/429/5xx (with its backoff); batchmark adds none of its own
around a call (``_backend``'s create retries only refusals, as often as this)."""
REAL_API = "api.anthropic.com"
EMULATOR = "emulator"
REDACTED = "***"
_BASE_URL_ENV = "ANTHROPIC_BASE_URL"
_KEY_ENV = "ANTHROPIC_API_KEY"
_KEY_ARGUMENT = "api_key argument"


def emulated_name(config: EvalConfig | RunSettings | None) -> str:
    """The endpoint name of a config's in-process emulator: ``emulator-<12 hex>``, a hash
    of what its answers depend on besides the request (the responder spec, the content of
    the files it names, the config's ``catalog:`` entries), so the response cache of one
    responder never serves another's answers. Nested files of a ``PATH.yaml`` responder
    map count by their names only; a ``python:MODULE`` by its name. Without an
    ``emulator:`` section (``RunSettings``, ``None``): ``emulator-`` the defaults' hash."""
    emulator = config.emulator if isinstance(config, EvalConfig) else EmulatorConfig()
    specs = emulator.responder if isinstance(emulator.responder, dict) else {"": emulator.responder}
    digest = hashlib.sha256()
    for glob, spec in specs.items():
        digest.update(f"{glob}\0{_without_dirs(spec)}\0".encode())
        for path in _responder_files(spec):
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                digest.update(b"(unreadable)")
    if isinstance(config, EvalConfig | RunSettings) and config.catalog:
        entries = {
            k: v.model_dump(mode="json", exclude_unset=True) for k, v in config.catalog.items()
        }
        digest.update(json.dumps(entries, sort_keys=True).encode())
    return f"{EMULATOR}-{digest.hexdigest()[:12]}"


def _responder_files(spec: str) -> list[str]:
    """The files a responder spec string reads: ``scripted:PATH``, ``python:FILE.py:FUNC``,
    ``PATH.yaml``."""
    if spec.startswith("scripted:"):
        return [spec.removeprefix("scripted:")]
    if spec.startswith("python:"):
        target = spec.removeprefix("python:").rsplit(":", 1)[0]
        return [target] if target.endswith(".py") else []
    return [spec] if spec.endswith((".yaml", ".yml")) else []


def _without_dirs(spec: str) -> str:
    """A spec with the folders of its paths left out: the same responder in two
    checkouts names the same cache."""
    kind, sep, rest = spec.partition(":")
    if not sep:
        return os.path.basename(spec)
    return f"{kind}:{os.path.basename(rest)}" if "/" in rest or os.sep in rest else spec


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, and with which key: resolved once per command (``resolve``)."""

    name: str
    """Names the response cache and the cross-run registry: ``emulator``,
    ``api.anthropic.com``, or a gateway's host[:port] (``endpoint_name``)."""
    url: str | None = None
    """The base URL to connect to; ``None``: the SDK's default (the real API). An
    emulated endpoint has one only while ``serving()``. Never written down as is:
    ``recorded_url`` is."""
    emulated: bool = False
    """Served by an in-process emulator started for the command (``serving()``)."""
    api_version: str | None = None
    """The ``anthropic-version`` header to send (the config's), else the SDK's."""
    key_source: str | None = None
    """Where the key comes from (``ANTHROPIC_API_KEY``, ``api_key argument``,
    ``emulator``), ``None`` when there is none: never the key itself."""
    emulator: EmulatorConfig | None = field(default=None, compare=False)
    """The in-process emulator's settings (the config's ``emulator:``); ``None``: the
    defaults."""
    catalog: Catalog | None = field(default=None, compare=False)
    """The in-process emulator's model catalog (the config's, with its ``catalog:``
    entries); ``None``: batchmark's."""
    _key: str | None = field(default=None, compare=False)
    _missing: str | None = field(default=None, compare=False)
    """Why no client can be made (no key, a URL whose credentials were not stored), for
    an endpoint resolved with ``strict=False``: ``client()`` raises it."""

    def __repr__(self) -> str:
        return (
            f"Endpoint(name={self.name!r}, url={self.recorded_url!r}, emulated={self.emulated}, "
            f"api_version={self.api_version!r}, key_source={self.key_source!r})"
        )

    @classmethod
    def resolve(
        cls,
        *,
        emulate: bool = False,
        base_url: str | None = None,
        api_key: str | None = None,
        config: EvalConfig | RunSettings | None = None,
        run: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        strict: bool = True,
    ) -> Endpoint:
        """The endpoint of a new run (``emulate``, ``base_url``), or of the run whose
        run.json is ``run``: emulated as it was (an emulated run is only ever driven by
        an in-process emulator: ``base_url`` is not used), else ``base_url`` or the
        recorded URL.

        ``config`` gives the API version and the emulator's settings; ``env`` defaults to
        ``os.environ``. Raises ``ConfigError`` for ``--emulate`` with ``--base-url``, and
        ``CredentialsError`` when there is no key for a real endpoint or a recorded URL's
        credentials are not at hand; with ``strict=False`` the latter wait for
        ``client()`` (``estimate`` and ``doctor`` do without a client).
        """
        env = os.environ if env is None else env
        api_version = config.api_version if config is not None else None
        emulated = bool(run.get("emulated")) if run is not None else emulate
        if emulated:
            if base_url and run is None:
                raise UsageError(
                    "--emulate cannot be combined with --base-url: --emulate starts its own "
                    "emulator in-process",
                    hint="to use an emulator at a URL, start `batchmark emulator` and pass "
                    "its URL with --base-url alone",
                )
            return cls(
                run.get("endpoint", EMULATOR) if run is not None else emulated_name(config),
                emulated=True,
                api_version=api_version,
                key_source=EMULATOR,
                emulator=config.emulator if isinstance(config, EvalConfig) else None,
                catalog=config.model_catalog() if config is not None else None,
                _key=EMULATOR,
            )
        missing = None
        if run is None:
            url = base_url or env.get(_BASE_URL_ENV) or None
            name = endpoint_name(url)
        else:
            name = run.get("endpoint", EMULATOR)  # as RunFolder.cache_path reads it
            try:
                url = _recorded_url(run, base_url, env)
            except CredentialsError as err:
                if strict:
                    raise
                url, missing = None, str(err)
        key, source = (api_key, _KEY_ARGUMENT) if api_key else (env.get(_KEY_ENV), _KEY_ENV)
        if not key:
            key = source = None
            missing = missing or _no_key(run)
            if strict:
                raise CredentialsError(missing)
        return cls(
            name, url, api_version=api_version, key_source=source, _key=key, _missing=missing
        )

    @property
    def recorded_url(self) -> str | None:
        """The URL as it may be written down: credentials replaced by ``***``."""
        return redact_url(self.url)

    def record(self) -> dict[str, Any]:
        """What run.json keeps of the endpoint of a new run: never the key."""
        return {"base_url": self.recorded_url, "endpoint": self.name, "emulated": self.emulated}

    def cache_path(self, root: Path) -> Path:
        """The response cache of this endpoint under a results root."""
        return cache_path(root, self.name)

    def claims_path(self, root: Path) -> Path:
        """The registry this endpoint's runs under ``root`` share with its key (only
        the key's fingerprint names the file)."""
        return claims_path(root, self.name, self._key)

    @contextlib.contextmanager
    def serving(self) -> Iterator[Endpoint]:
        """This endpoint, reachable: an emulated one as its in-process emulator, started
        here with the config's ``emulator:`` settings and stopped when the block ends."""
        if not self.emulated or self.url is not None:
            yield self
            return
        from batchmark.emulator import Emulator

        settings = self.emulator or EmulatorConfig()
        emulator = Emulator(
            responder=settings.responder,
            faults=settings.faults,
            processing_seconds=settings.processing_seconds,
            seed=settings.seed,
            queue_limit=settings.queue_limit,
            catalog=self.catalog,
        )
        with emulator.serve() as url:
            yield dataclasses.replace(self, url=url)

    def client(self, *, max_retries: int = MAX_RETRIES) -> anthropic.Anthropic:
        """An SDK client for this endpoint; the key is never read from disk."""
        if self.emulated and self.url is None:
            raise RuntimeError("an emulated endpoint has a client only while serving()")
        if self._missing is not None or not self._key:
            raise CredentialsError(self._missing or _no_key(None))
        return self._client(self._key, max_retries)

    def token_counter(self) -> anthropic.Anthropic | None:
        """A client for ``estimate``'s count_tokens, or ``None`` to approximate locally:
        when emulated, or with neither a key nor a URL to ask. A local emulator or
        gateway may need no key, but the SDK insists on one: a placeholder is sent."""
        if self.emulated or not (self._key or self.url):
            return None
        if self._key:
            return self.client(max_retries=2)
        return self._client("unset", 2)

    def _client(self, key: str, max_retries: int) -> anthropic.Anthropic:
        import anthropic

        headers = {"anthropic-version": self.api_version} if self.api_version else None
        return anthropic.Anthropic(
            api_key=key, base_url=self.url, max_retries=max_retries, default_headers=headers
        )


def _no_key(run: Mapping[str, Any] | None) -> str:
    if run is None:
        return (
            "no API key: set ANTHROPIC_API_KEY, or pass --emulate to run against the "
            "bundled emulator offline"
        )
    return (
        f"no API key: set ANTHROPIC_API_KEY to the key run {run.get('run_id')} was made "
        f"with ({run.get('endpoint', REAL_API)})"
    )


def _recorded_url(
    run: Mapping[str, Any], base_url: str | None, env: Mapping[str, str]
) -> str | None:
    """The URL to reach an existing run's endpoint: ``base_url`` when given, else the
    recorded one; for a run recorded against the real API, ``ANTHROPIC_BASE_URL`` if set.

    A recorded URL had its credentials replaced by ``***`` (they are never written to
    disk): then ``ANTHROPIC_BASE_URL`` serves when it is that URL with its credentials,
    else the user must pass the URL again.
    """
    if base_url:
        return base_url
    recorded = run.get("base_url")
    if not recorded:
        return env.get(_BASE_URL_ENV) or None
    if REDACTED not in recorded:
        return recorded
    from_env = env.get(_BASE_URL_ENV)
    if from_env and redact_url(from_env) == recorded:
        return from_env
    raise CredentialsError(
        f"run {run.get('run_id')} used the endpoint {recorded}, whose credentials were not "
        "stored; pass it again with --base-url URL (or set ANTHROPIC_BASE_URL to it)"
    )


def endpoint_name(url: str | None) -> str:
    """The name of a real endpoint at ``url``: caches never mix endpoints.

    An emulated run must never serve its stand-in answers to a run against the real
    API, so each endpoint (``emulator``, ``api.anthropic.com``, a gateway's host:port)
    has its own cache file. Credentials in the URL never reach the name.
    """
    if not url:
        return REAL_API
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2] if parts.netloc else redact_url(url) or ""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", netloc)


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials, to be written down: user info and query values are
    replaced by ``***`` (a proxy's ``https://user:token@host/`` or ``?key=...``).

    The API key itself is never in a URL batchmark builds; this guards what users pass.
    """
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{pair.partition('=')[0]}={REDACTED}" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
