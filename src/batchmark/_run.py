"""A run: expand a config into the ledger, drive its batches, finalize its results.

``run(config)`` is what ``batchmark run`` calls; ``resume(run)`` finishes a run that
was detached or killed; ``cancel(run)`` stops one. ``Run`` is the handle notebooks use:
``.status``, ``.requests()``, ``.responses()``, ``.responses_df()``, ``.summary()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchmark._backend import AnthropicBackend, make_client
from batchmark._batches import BatchRunner, BatchSettings, Progress, crashpoint
from batchmark._config import EvalSpec, load_config
from batchmark._errors import BatchmarkError, ConfigError
from batchmark._grid import expand
from batchmark._pricing import cost_usd, price_for
from batchmark._store import (
    Ledger,
    ResponseCache,
    RunFolder,
    cache_path,
    endpoint_name,
    resolve_run,
    write_atomic,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "RunStatus", "cancel", "open_run", "resume", "run"]

DEFAULT_RESULTS = Path("results")
ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Where a run stands, from its ledger."""

    state: str  # expanding | submitted | running | complete | canceled
    total: int
    done: int
    failed: int
    pending: int
    in_flight: int
    batches: int
    open_batches: int

    @property
    def complete(self) -> bool:
        return self.done + self.failed == self.total


class Run:
    """A run folder and its ledger, read-only unless driven by ``run``/``resume``."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {str(self.path)!r})"

    @property
    def id(self) -> str:
        return self.folder.id

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def info(self) -> dict[str, Any]:
        return self.folder.read_info()

    def spec(self) -> EvalSpec:
        """The config snapshot this run was made from (paths as of the original file)."""
        return load_config(self.info["config_path"])

    def _ledger(self) -> Ledger:
        return Ledger(self.folder.ledger_path)

    @property
    def status(self) -> RunStatus:
        ledger = self._ledger()
        try:
            states = ledger.state_counts()
            batches = ledger.batches()
        finally:
            ledger.close()
        total = sum(states.values())
        done, failed = states.get("done", 0), states.get("failed", 0)
        info = self.info
        if info.get("canceled"):
            state = "canceled"
        elif done + failed == total and total:
            state = "complete"
        else:
            state = "running" if batches else "submitted"
        return RunStatus(
            state=state,
            total=total,
            done=done,
            failed=failed,
            pending=states.get("pending", 0) + states.get("submitting", 0),
            in_flight=states.get("submitted", 0),
            batches=len(batches),
            open_batches=sum(1 for b in batches if not b["collected"]),
        )

    def batches(self) -> list[dict[str, Any]]:
        ledger = self._ledger()
        try:
            return ledger.batches()
        finally:
            ledger.close()

    def requests(self) -> Iterator[dict[str, Any]]:
        """Every expanded request: ids, cell coordinates, state and the API params."""
        ledger = self._ledger()
        try:
            cur = ledger.db.execute(
                "SELECT custom_id, variant, model_key, model, row_id, epoch, cache_key, state, "
                "attempts, batch_id, params FROM requests ORDER BY seq"
            )
            cols = [c[0] for c in cur.description]
            for row in cur:
                record = dict(zip(cols, row, strict=True))
                record["params"] = orjson.loads(record["params"])
                yield record
        finally:
            ledger.close()

    def responses(self) -> Iterator[dict[str, Any]]:
        """The final response of every ended request (its last attempt), in grid order."""
        ledger = self._ledger()
        try:
            yield from _final_responses(ledger)
        finally:
            ledger.close()

    def responses_df(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for r in self.responses():
            usage = r.pop("usage", None) or {}
            r.pop("cache_creation", None)
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            ):
                r[key] = usage.get(key, 0)
            rows.append(r)
        return pd.DataFrame(rows)

    def summary(self) -> list[dict[str, Any]]:
        """Counts, tokens and cost per model x variant (computed from the responses)."""
        pricing = self.info.get("pricing") or {}
        return summarize(self.responses(), pricing)


_RESPONSE_SQL = """
SELECT q.custom_id, q.variant, q.model_key, q.model, q.row_id, q.epoch, q.attempts,
       r.attempt, r.batch_id, r.status, r.data
FROM requests q JOIN responses r ON r.custom_id = q.custom_id
WHERE q.state IN ('done', 'failed')
  AND r.attempt = (SELECT max(attempt) FROM responses r2 WHERE r2.custom_id = q.custom_id)
ORDER BY q.seq
"""


def _final_responses(ledger: Ledger) -> Iterator[dict[str, Any]]:
    for row in ledger.db.execute(_RESPONSE_SQL):
        custom_id, variant, model_key, model, row_id, epoch, attempts, attempt, batch_id = row[:9]
        status, data = row[9], orjson.loads(row[10])
        record: dict[str, Any] = {
            "custom_id": custom_id,
            "variant": variant,
            "model_key": model_key,
            "model": model,
            "row_id": row_id,
            "epoch": epoch,
            "status": status,
            "attempts": attempts,
            "batch_id": batch_id,
            "cached": bool(data.pop("cached", False)),
            "text": None,
            "tool_calls": [],
            "stop_reason": None,
            "response_model": None,
            "usage": None,
            "error_type": None,
            "error_message": None,
        }
        record.update(data)
        yield record


def summarize(responses: Iterator[dict[str, Any]], pricing: dict[str, Any]) -> list[dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in responses:
        cell = cells.get((r["model_key"], r["variant"]))
        if cell is None:
            cell = cells[(r["model_key"], r["variant"])] = {
                "model": r["model_key"],
                "variant": r["variant"],
                "requests": 0,
                "succeeded": 0,
                "errored": 0,
                "cached": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_write_tokens": 0,
                "cache_read_tokens": 0,
                "cost_usd": 0.0,
                "cost_standard_usd": 0.0,
                "reused_cost_usd": 0.0,
                "priced": True,
            }
        cell["requests"] += 1
        if r["status"] != "succeeded":
            cell["errored"] += 1
            continue
        cell["succeeded"] += 1
        usage = r.get("usage") or {}
        cell["input_tokens"] += usage.get("input_tokens", 0)
        cell["output_tokens"] += usage.get("output_tokens", 0)
        cell["cache_write_tokens"] += usage.get("cache_creation_input_tokens", 0)
        cell["cache_read_tokens"] += usage.get("cache_read_input_tokens", 0)
        cell["cached"] += bool(r["cached"])
        price = price_for(r["model"], pricing)
        if price is None:
            cell["priced"] = False
        elif r["cached"]:  # paid for by an earlier run
            cell["reused_cost_usd"] += cost_usd(usage, price, batch=True)
        else:
            cell["cost_usd"] += cost_usd(usage, price, batch=True)
            cell["cost_standard_usd"] += cost_usd(usage, price, batch=False)
    out = []
    for cell in cells.values():
        if not cell.pop("priced"):
            cell["cost_usd"] = cell["cost_standard_usd"] = cell["reused_cost_usd"] = None
        out.append(cell)
    return out


# --- creating and driving runs --------------------------------------------------------


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _settings(spec: EvalSpec) -> BatchSettings:
    b = spec.batch
    return BatchSettings(
        max_requests=b.max_requests,
        max_bytes=b.max_bytes,
        max_in_flight=b.max_in_flight,
        poll_interval=b.poll_interval,
        max_poll_interval=b.max_poll_interval,
        max_attempts=b.max_attempts,
    )


def _expand_into(ledger: Ledger, spec: EvalSpec, cache: ResponseCache | None) -> None:
    """Write every request of the grid into the ledger; cache hits arrive already done."""
    batch: list[Any] = []

    def flush() -> None:
        hits = cache.get_many([r.cache_key for r in batch]) if cache is not None else {}
        rows, responses = [], []
        for r in batch:
            hit = hits.get(r.cache_key)
            rows.append(
                (
                    r.custom_id,
                    seq + len(rows),
                    r.variant,
                    r.model_key,
                    r.model,
                    r.row_id,
                    r.epoch,
                    r.cache_key,
                    orjson.dumps(r.params),
                    "done" if hit else "pending",
                )
            )
            if hit:
                data = {**hit, "cached": True}
                responses.append((r.custom_id, 0, None, "succeeded", orjson.dumps(data)))
        with ledger.transaction() as db:
            try:
                db.executemany(
                    "INSERT INTO requests (custom_id, seq, variant, model_key, model, row_id, "
                    "epoch, cache_key, params, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except Exception as err:
                if "UNIQUE" in str(err):
                    raise ConfigError(
                        str(spec.path),
                        f"two cells of the grid share a custom_id ({err}); rename a variant, "
                        "model or row id",
                    ) from err
                raise
            db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?)", responses)

    seq = 0
    for request in expand(spec):
        batch.append(request)
        if len(batch) >= 5000:
            flush()
            seq += len(batch)
            batch = []
    if batch:
        flush()


def run(
    config: EvalSpec | str | os.PathLike[str],
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    emulate: bool = False,
    base_url: str | None = None,
    api_key: str | None = None,
    use_cache: bool = True,
    detach: bool = False,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
) -> Run:
    """Expand a config, submit its batches and (unless ``detach``) collect every result.

    Everything is rendered and written to the ledger before the first batch is sent, so
    a template or dataset error costs nothing. ``emulate`` runs against the bundled
    emulator in-process with the config's ``emulator:`` settings.
    """
    spec = config if isinstance(config, EvalSpec) else load_config(config)
    if emulate and detach:
        raise ConfigError(
            None,
            "--detach cannot be combined with --emulate: the in-process emulator stops "
            "when the command exits",
            hint="start `batchmark emulator` separately and set ANTHROPIC_BASE_URL",
        )
    if not emulate:
        make_client(base_url=base_url, api_key=api_key)  # fail early without a key
    root = Path(results)
    folder = _create_run_folder(root, spec, use_cache=use_cache, emulate=emulate, base_url=base_url)
    handle = Run(folder)
    crashpoint("after_expand")
    if emulate:
        from batchmark.emulator import Emulator

        emu_settings = spec.emulator
        emulator = Emulator(
            responder=emu_settings.responder,
            faults=emu_settings.faults,
            processing_seconds=emu_settings.processing_seconds,
            seed=emu_settings.seed,
        )
        with emulator.serve() as url:
            _drive(
                handle,
                spec,
                base_url=url,
                api_key="emulator",
                use_cache=use_cache,
                detach=False,
                on_progress=on_progress,
                poll_interval=poll_interval,
            )
    else:
        _drive(
            handle,
            spec,
            base_url=base_url,
            api_key=api_key,
            use_cache=use_cache,
            detach=detach,
            on_progress=on_progress,
            poll_interval=poll_interval,
        )
    return handle


def _create_run_folder(
    root: Path, spec: EvalSpec, *, use_cache: bool, emulate: bool, base_url: str | None
) -> RunFolder:
    """Expand into a hidden folder, then rename: a failed expansion leaves nothing."""
    run_id = _new_run_id()
    endpoint_url = None if emulate else base_url or os.environ.get("ANTHROPIC_BASE_URL")
    partial = root / spec.name / f".{run_id}.partial"
    partial.mkdir(parents=True)
    try:
        (partial / "config.yaml").write_text(spec.text)
        info = {
            "run_id": run_id,
            "eval": spec.name,
            "created_at": datetime.now(UTC).isoformat(),
            "config_path": str(spec.path),
            "config_hash": spec.hash,
            "base_url": endpoint_url,
            "endpoint": endpoint_name(endpoint_url, emulate),
            "api_version": spec.api_version,
            "emulated": emulate,
            "use_cache": use_cache,
            "pricing": {k: dict(v) for k, v in (spec.pricing or {}).items()},
            "settings": dataclasses.asdict(_settings(spec)),
        }
        RunFolder(partial).write_info(info)
        ledger = Ledger(partial / "ledger.sqlite")
        cache = ResponseCache(cache_path(root, info["endpoint"])) if use_cache else None
        try:
            _expand_into(ledger, spec, cache)
        finally:
            ledger.close()
            if cache is not None:
                cache.close()
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    final = root / spec.name / run_id
    os.replace(partial, final)
    return RunFolder(final)


@contextlib.contextmanager
def _lock(folder: RunFolder) -> Iterator[None]:
    """One process drives a run at a time; the OS drops the lock if it is killed."""
    fh = open(folder.path / ".lock", "w")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchmarkError(
                f"run {folder.id} is being driven by another batchmark process; wait for "
                "it, or stop it first"
            ) from None
        yield
    finally:
        fh.close()


def _drive(
    handle: Run,
    spec_or_settings: EvalSpec | BatchSettings,
    *,
    base_url: str | None,
    api_key: str | None,
    use_cache: bool,
    detach: bool,
    on_progress: ProgressFn | None,
    poll_interval: float | None,
    deadline: float | None = None,
) -> bool:
    folder = handle.folder
    info = folder.read_info()
    settings = (
        _settings(spec_or_settings) if isinstance(spec_or_settings, EvalSpec) else spec_or_settings
    )
    if poll_interval is not None:
        settings = dataclasses.replace(
            settings,
            poll_interval=poll_interval,
            max_poll_interval=max(
                poll_interval, min(settings.max_poll_interval, poll_interval * 10)
            ),
        )
    client = make_client(base_url=base_url, api_key=api_key, api_version=info.get("api_version"))
    with _lock(folder):
        ledger = Ledger(folder.ledger_path)
        cache = ResponseCache(folder.cache_path) if use_cache else None
        try:
            runner = BatchRunner(ledger, AnthropicBackend(client), settings, cache, on_progress)
            finished = runner.run(submit_only=detach, deadline=deadline)
            if finished:
                _finalize(handle, ledger)
            return finished
        finally:
            ledger.close()
            if cache is not None:
                cache.close()
            client.close()


def _finalize(handle: Run, ledger: Ledger) -> None:
    """Write responses.jsonl and summary.json (atomically) once every request ended."""
    folder = handle.folder
    tmp = folder.responses_path.with_name(".responses.jsonl.tmp")
    with open(tmp, "wb") as fh:
        for record in _final_responses(ledger):
            fh.write(orjson.dumps(record) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder.responses_path)
    info = folder.read_info()
    summary = {
        "run_id": handle.id,
        "eval": info["eval"],
        "cells": summarize(_final_responses(ledger), info.get("pricing") or {}),
        "states": ledger.state_counts(),
    }
    write_atomic(folder.summary_path, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if not info.get("ended_at"):
        info["ended_at"] = datetime.now(UTC).isoformat()
        folder.write_info(info)


def open_run(ref: str | os.PathLike[str], results: str | os.PathLike[str] = DEFAULT_RESULTS) -> Run:
    """A run by id (under ``results``) or by folder path."""
    return Run(resolve_run(ref, Path(results)))


def resume(
    ref: str | os.PathLike[str] | Run,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    base_url: str | None = None,
    api_key: str | None = None,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    wait_timeout: float | None = None,
) -> Run:
    """Finish a detached or interrupted run without sending anything twice."""
    handle = ref if isinstance(ref, Run) else open_run(ref, results)
    info = handle.info
    if info.get("emulated") and not (base_url or os.environ.get("ANTHROPIC_BASE_URL")):
        raise BatchmarkError(
            f"run {handle.id} ran against an in-process emulator that stopped with it; "
            "start a new run with `batchmark run CONFIG --emulate`"
        )
    settings = BatchSettings(**info["settings"])
    deadline = time.time() + wait_timeout if wait_timeout is not None else None
    _drive(
        handle,
        settings,
        base_url=base_url or info.get("base_url"),
        api_key=api_key,
        use_cache=info.get("use_cache", True),
        detach=False,
        on_progress=on_progress,
        poll_interval=poll_interval,
        deadline=deadline,
    )
    return handle


def cancel(
    ref: str | os.PathLike[str] | Run,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    base_url: str | None = None,
    api_key: str | None = None,
) -> list[str]:
    """Cancel a run: nothing more is submitted and in-flight batches are canceled.

    Returns the ids of the batches asked to cancel. Their results (requests that
    finished before the cancel still succeed) are collected by ``resume``.
    """
    handle = ref if isinstance(ref, Run) else open_run(ref, results)
    info = handle.info
    client = make_client(
        base_url=base_url or info.get("base_url"),
        api_key=api_key,
        api_version=info.get("api_version"),
    )
    ledger = Ledger(handle.folder.ledger_path)
    try:
        runner = BatchRunner(ledger, AnthropicBackend(client), BatchSettings(**info["settings"]))
        runner.fail_pending("the run was canceled before this request was submitted")
        canceled = runner.cancel_open_batches()
    finally:
        ledger.close()
        client.close()
    info["canceled"] = datetime.now(UTC).isoformat()
    handle.folder.write_info(info)
    return canceled
