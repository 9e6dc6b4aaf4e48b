"""Creating and driving runs: ``run``, ``resume``, ``cancel`` and ``score``.

``run(config)`` renders every request into a new run folder's ledger, then drives its
batches; ``resume(run)`` drives a detached or interrupted run to its end; ``cancel``
stops one; ``score`` scores a run again (asking judges what they have not been asked).
One driver at a time holds a run's lock. Driving means: candidate batches until every
candidate ended, then the judge requests (same machinery), then scores, then the
run's files (responses.jsonl, scores.jsonl, summary.json).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from batchmark._errors import BatchmarkError, ConfigError, RunBusy, RunStateError, UsageError
from batchmark.config._schema import EvalSpec, RunSettings, load_config
from batchmark.runs._backend import AnthropicBackend
from batchmark.runs._batches import BatchRunner, Progress
from batchmark.runs._claims import Claims, owner_alive
from batchmark.runs._crashpoints import crashpoint
from batchmark.runs._datasets import iter_rows
from batchmark.runs._endpoint import Endpoint
from batchmark.runs._gc import gc_paused
from batchmark.runs._grid import expand
from batchmark.runs._ledger import Ledger
from batchmark.runs._packing import API_MAX_BYTES, BODY_OVERHEAD
from batchmark.runs._request_checks import RequestChecks
from batchmark.runs._responses import final_responses, summary_cells
from batchmark.runs._run import DEFAULT_RESULTS, Run, open_run
from batchmark.runs._scoring import (
    iter_scores,
    judge_agreement,
    judge_requests,
    judges_of,
    score_run,
    scores_summary,
)
from batchmark.runs._store import ResponseCache, RunFolder, atomic_writer, write_atomic

__all__ = ["cancel", "finish_run", "resume", "run", "score", "start_run"]

ProgressFn = Callable[[Progress], None]
INSERT_CHUNK = 5000
LOCK_TRIES = 20  # 0.1 s apart


def _check_scorer_variables(spec: EvalSpec, scorers: list[Any]) -> None:
    """Every row variable a scorer's templates read exists in the dataset, before sending."""
    needed = {name: getattr(s, "row_variables", frozenset()) for s in scorers for name in [s.name]}
    if not any(needed.values()):
        return
    first = next(iter_rows(spec), None)
    columns = set(first.data) if first is not None else set()
    problems = [
        f"scorers: {name!r} reads the row variable {var!r}, which the dataset does not have"
        for name, variables in needed.items()
        for var in sorted(variables - columns - {"row", "row_id"})
    ]
    if problems:
        raise ConfigError(
            str(spec.path), problems, hint=f"the dataset's columns: {', '.join(sorted(columns))}"
        )


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _insert_requests(
    ledger: Ledger,
    requests: Iterable[Any],
    cache: ResponseCache | None,
    *,
    kind: str = "candidate",
    file: str | None = None,
    max_bytes: int | None = None,
) -> int:
    """Write requests into the ledger in chunks; cache hits arrive already done.

    ``requests`` are grid ``Request``s or ``JudgeRequest``s (same fields, judges add
    ``parent_id`` and ``scorer``). Returns how many were written. With ``max_bytes``, a
    request too large for any batch is refused (``ConfigError``, as ``validate`` does)
    before anything is sent.
    """
    limit = None if max_bytes is None else min(max_bytes, API_MAX_BYTES) - BODY_OVERHEAD - 1
    seq = ledger.next_seq()
    written = 0
    chunk: list[Any] = []

    def flush() -> None:
        nonlocal seq, written
        hits = cache.get_many([r.cache_key for r in chunk]) if cache is not None else {}
        if limit is not None:
            for r in chunk:
                if r.nbytes > limit:
                    raise ConfigError(
                        file,
                        f"request {r.custom_id} (variant {r.variant!r}, model "
                        f"{r.model_key!r}, row {r.row_id!r}) is {r.nbytes} bytes, over "
                        f"batch.max_bytes ({max_bytes}); nothing was sent",
                        "shorten the prompt or raise batch.max_bytes (`batchmark validate` "
                        "checks every request)",
                    )
        try:
            ledger.insert_requests(chunk, seq, hits, kind=kind)
        except sqlite3.IntegrityError as err:
            if err.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE":  # requests.custom_id
                raise ConfigError(
                    file,
                    f"two requests share a custom_id ({err}); rename a variant, model, "
                    "row id or scorer",
                ) from err
            raise
        seq += len(chunk)
        written += len(chunk)
        chunk.clear()
        crashpoint("mid_expand")

    with gc_paused():  # rendering and hashing make no reference cycles
        for request in requests:
            chunk.append(request)
            if len(chunk) >= INSERT_CHUNK:
                flush()
        if chunk:
            flush()
    return written


def run(
    config: EvalSpec | str | os.PathLike[str],
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    emulate: bool = False,
    base_url: str | None = None,
    api_key: str | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    detach: bool = False,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    on_created: Callable[[Run], None] | None = None,
    max_cost: float | None = None,
) -> Run:
    """Expand a config, submit its batches and (unless ``detach``) collect and score.

    Everything is rendered and written to the ledger before the first batch is sent, so
    a template or dataset error costs nothing. ``emulate`` runs against the bundled
    emulator in-process with the config's ``emulator:`` settings; otherwise the endpoint
    is ``base_url``, else ``ANTHROPIC_BASE_URL``, else the real API, with ``api_key``,
    else ``ANTHROPIC_API_KEY`` (``Endpoint.resolve``). ``on_created`` is called with the
    new run before anything is submitted (the CLI prints its id, so an interrupted run
    can be resumed). ``max_cost`` (USD) refuses, before anything is written or sent, a
    run whose estimated maximum cost is over it (``BudgetExceeded``). ``refresh`` sends
    again every request the response cache answered before the run started and replaces
    those entries with the new answers (``use_cache=False`` neither reads nor writes it).
    """
    spec = config if isinstance(config, EvalSpec) else load_config(config)
    endpoint = Endpoint.resolve(emulate=emulate, base_url=base_url, api_key=api_key, config=spec)
    return start_run(
        spec,
        endpoint,
        results=results,
        use_cache=use_cache,
        refresh=refresh,
        detach=detach,
        on_progress=on_progress,
        poll_interval=poll_interval,
        on_created=on_created,
        max_cost=max_cost,
    )


def start_run(
    spec: EvalSpec,
    endpoint: Endpoint,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    use_cache: bool = True,
    refresh: bool = False,
    detach: bool = False,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    on_created: Callable[[Run], None] | None = None,
    max_cost: float | None = None,
) -> Run:
    """``run`` against a resolved endpoint (``ci`` drives the same endpoint afterwards)."""
    if endpoint.emulated and detach:
        raise UsageError(
            "--detach cannot be combined with --emulate: the in-process emulator stops "
            "when the command exits",
            hint="start `batchmark emulator` separately and set ANTHROPIC_BASE_URL",
        )
    _check_scorer_variables(spec, spec.build_scorers())
    if max_cost is not None:
        _check_budget(spec, max_cost, Path(results), endpoint, use_cache and not refresh)
    folder = _create_run_folder(
        Path(results), spec, endpoint, use_cache=use_cache, refresh=use_cache and refresh
    )
    handle = Run(folder)
    if on_created is not None:
        on_created(handle)
    crashpoint("after_expand")
    _drive(
        handle, spec, endpoint, detach=detach, on_progress=on_progress, poll_interval=poll_interval
    )
    return handle


def _check_budget(
    spec: EvalSpec, max_cost: float, results: Path, endpoint: Endpoint, use_cache: bool
) -> None:
    """Estimate the run (real token counts when an endpoint is reachable) against a budget."""
    from batchmark.runs._estimate import check_budget, estimate

    client = None if endpoint.emulated else endpoint.client()
    try:
        est = estimate(
            spec, results=results, client=client, endpoint=endpoint.name, use_cache=use_cache
        )
    finally:
        if client is not None:
            client.close()
    check_budget(est, max_cost)


def _create_run_folder(
    root: Path, spec: EvalSpec, endpoint: Endpoint, *, use_cache: bool, refresh: bool = False
) -> RunFolder:
    """Expand into a hidden folder, then rename: a failed expansion, or a request the
    API would refuse (``RequestChecks``, as ``validate``), leaves nothing.

    run.json holds the run's facts (ids, the endpoint's name and URL without its
    credentials, times, the config's hash); its settings are the config snapshot's.
    """
    run_id = _new_run_id()
    partial = root / spec.name / f".{run_id}.partial"
    partial.mkdir(parents=True)
    # Held while expanding: a later run removes a partial folder nobody holds (its
    # expansion was killed), with the blobs it may hold (_sweep_partials).
    expanding = open(partial / ".lock", "w")  # noqa: SIM115
    fcntl.flock(expanding, fcntl.LOCK_EX)
    _sweep_partials(root / spec.name)
    try:
        (partial / "config.yaml").write_text(spec.text, encoding="utf-8")
        info = {
            "run_id": run_id,
            "eval": spec.name,
            "created_at": datetime.now(UTC).isoformat(),
            "config_path": str(spec.path),
            "config_hash": spec.hash,
            **endpoint.record(),
            "use_cache": use_cache,
        }
        if refresh:  # answers cached before now are sent again (also by a resume)
            info["cache_fresh_after"] = time.time()
        RunFolder(partial).write_info(info)
        ledger = Ledger(partial / "ledger.sqlite")
        cache = _open_cache(endpoint.cache_path(root), info)
        checks = RequestChecks(spec)  # what validate refuses, run refuses before sending
        try:
            _insert_requests(
                ledger,
                checks.checked(expand(spec, blobs=ledger)),
                cache,
                file=str(spec.path),
                max_bytes=spec.batch.max_bytes,
            )
            checks.raise_errors(sending=True)
        finally:
            ledger.close()
            if cache is not None:
                cache.close()
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        expanding.close()
        raise
    final = root / spec.name / run_id
    os.replace(partial, final)
    expanding.close()
    return RunFolder(final)


PARTIAL_GRACE_SECONDS = 3600.0
"""A partial folder without a lock file (made by a version that took none, or being
made this instant) is removed only once it is this old."""


def _sweep_partials(eval_dir: Path) -> None:
    """Remove the ``.ID.partial`` folders of expansions that were killed: their lock is
    free (the OS released it with the process). Best effort: one that cannot be removed
    stays, and ``status`` never lists them."""
    for path in eval_dir.glob(".*.partial"):
        lock = path / ".lock"
        try:
            if lock.exists():
                if owner_alive(str(path)):
                    continue
            elif time.time() - path.stat().st_mtime < PARTIAL_GRACE_SECONDS:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


def _open_cache(path: Path, info: dict[str, Any]) -> ResponseCache | None:
    """The response cache as run.json says the run uses it: not at all (``--no-cache``),
    or only its entries written since the run started (``--refresh``)."""
    if not info.get("use_cache", True):
        return None
    return ResponseCache(path, fresh_after=info.get("cache_fresh_after"))


@contextlib.contextmanager
def _lock(folder: RunFolder) -> Iterator[None]:
    """One process drives a run at a time; the OS drops the lock if it is killed."""
    fh = open(folder.path / ".lock", "w")  # noqa: SIM115
    try:
        # Another run may hold it for a moment (settling this run's lost create, or
        # checking whether it is alive): wait a little before calling it busy.
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_TRIES - 1:
                    raise RunBusy(
                        f"run {folder.id} is being driven by another batchmark process",
                        hint="wait for it, or stop it first",
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        fh.close()


def _drive(
    handle: Run,
    spec: EvalSpec,
    endpoint: Endpoint,
    *,
    detach: bool = False,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    deadline: float | None = None,
    only_scorers: Iterable[str] | None = None,
    resend_lost: bool = False,
) -> bool:
    """Candidates, then judges, then scores and files. True once everything ended.

    An emulated endpoint's in-process emulator serves for as long as this drives.
    """
    folder = handle.folder
    info = folder.read_info()
    batch = spec.batch
    if poll_interval is not None:  # --poll-interval: a faster start, the same growth cap
        batch = batch.model_copy(
            update={
                "poll_interval": poll_interval,
                "max_poll_interval": max(
                    poll_interval, min(batch.max_poll_interval, poll_interval * 10)
                ),
            }
        )
    scorers = spec.build_scorers()
    with endpoint.serving() as live, _lock(folder), contextlib.ExitStack() as stack:
        client = live.client()
        stack.callback(client.close)
        ledger = Ledger(folder.ledger_path)
        stack.callback(ledger.close)
        cache = _open_cache(live.cache_path(folder.results_root), info)
        if cache is not None:
            stack.callback(cache.close)
        claims = _claims(folder, live)
        stack.callback(claims.close)
        runner = BatchRunner(
            ledger,
            AnthropicBackend(client),
            batch,
            cache,
            on_progress,
            claims=claims,
            resend_lost=resend_lost,
        )
        finished = runner.run(submit_only=detach, deadline=deadline)
        judges = judges_of(scorers)
        if finished and judges:
            wanted = set(only_scorers) if only_scorers is not None else None
            asked = judges_of(scorers.select(wanted))  # with those the named ones depend on
            new = judge_requests(ledger, spec, asked)
            if _insert_requests(ledger, new, cache, kind="judge", file=str(spec.path)):
                finished = runner.run(submit_only=detach, deadline=deadline)
        if finished:
            score_run(ledger, spec, scorers, only=only_scorers)
            _finalize(handle, ledger)
        return finished


def _claims(folder: RunFolder, endpoint: Endpoint) -> Claims:
    """The registry this run shares with every run under its results root, endpoint and
    API key (only the key's fingerprint names the file).

    An emulated run's batches live in its own in-process emulator: another run cannot
    read them, so its claims are taken over as soon as it stops."""
    return Claims(
        endpoint.claims_path(folder.results_root),
        folder.path,
        shared_batches=not endpoint.emulated,
    )


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Stream records into a temporary file, then rename it over ``path``."""
    for _ in _written(path, records):
        pass


def _written(path: Path, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield ``records`` while writing each into ``path`` (``atomic_writer``: it appears
    whole once all are written; a consumer stopped midway leaves ``path`` as it was)."""
    with atomic_writer(path) as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")
            yield record


def _finalize(handle: Run, ledger: Ledger) -> None:
    """Write responses.jsonl, scores.jsonl and summary.json once every request ended.

    The summary's candidate cells are added up from the very records responses.jsonl is
    written from: one pass over the responses, not two."""
    folder = handle.folder
    settings = handle.settings()
    with gc_paused():
        candidates = _written(folder.responses_path, final_responses(ledger))
        cells = summary_cells(ledger, settings.pricing, settings.model_catalog(), candidates)
        _write_jsonl(folder.path / "scores.jsonl", iter_scores(ledger))
    info = folder.read_info()
    summary = {
        "run_id": handle.id,
        "eval": info["eval"],
        "cells": cells,
        "scores": scores_summary(ledger),
        "judge_agreement": judge_agreement(ledger),
        "states": ledger.state_counts(),
    }
    write_atomic(folder.summary_path, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if not info.get("ended_at"):
        info["ended_at"] = datetime.now(UTC).isoformat()
        folder.write_info(info)


def resume(
    ref: str | os.PathLike[str] | Run,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    base_url: str | None = None,
    api_key: str | None = None,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    wait_timeout: float | None = None,
    resend_lost: bool = False,
) -> Run:
    """Finish a detached or interrupted run without sending anything twice.

    It goes back to the endpoint it was made against (``base_url`` overrides the
    recorded URL). Batches written off as lost (404 and missing from the batch list for
    ``batch.lost_after_seconds``) are looked for again; ``resend_lost`` sends the
    requests of those still not found again (they may have been billed already).
    """
    handle = ref if isinstance(ref, Run) else open_run(ref, results)
    spec = handle.spec()
    endpoint = Endpoint.resolve(run=handle.info, base_url=base_url, api_key=api_key, config=spec)
    return finish_run(
        handle,
        spec,
        endpoint,
        on_progress=on_progress,
        poll_interval=poll_interval,
        wait_timeout=wait_timeout,
        resend_lost=resend_lost,
    )


def finish_run(
    handle: Run,
    spec: EvalSpec,
    endpoint: Endpoint,
    *,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
    wait_timeout: float | None = None,
    resend_lost: bool = False,
) -> Run:
    """``resume`` against a resolved endpoint (the run's own, see ``Endpoint.resolve``)."""
    if endpoint.emulated and not handle.status.complete:
        raise RunStateError(
            f"run {handle.id} ran against an in-process emulator that stopped with it",
            hint="start a new run with `batchmark run CONFIG --emulate`",
        )
    deadline = time.time() + wait_timeout if wait_timeout is not None else None
    _drive(
        handle,
        spec,
        endpoint,
        on_progress=on_progress,
        poll_interval=poll_interval,
        deadline=deadline,
        resend_lost=resend_lost,
    )
    return handle


def score(
    ref: str | os.PathLike[str] | Run,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    config: str | os.PathLike[str] | None = None,
    scorers: Iterable[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    on_progress: ProgressFn | None = None,
    poll_interval: float | None = None,
) -> Run:
    """Score a run again without regenerating its responses.

    The scorers come from ``config`` when given (edit a scorer, score again), else from
    the run's own config snapshot; ``scorers`` names a subset. Judges not yet asked
    about an item are asked now, through the batch machinery (cached, resumable), at the
    run's own endpoint (``base_url`` overrides the recorded URL) with the API version of
    the config the scorers come from.
    """
    handle = ref if isinstance(ref, Run) else open_run(ref, results)
    spec = load_config(config) if config is not None else handle.spec()
    known = {s.name for s in spec.build_scorers()}
    unknown = sorted(set(scorers or ()) - known)
    if unknown:
        raise ConfigError(
            str(spec.path),
            f"no scorer named {', '.join(map(repr, unknown))}",
            hint=f"scorers in this config: {', '.join(sorted(known)) or 'none'}",
        )
    if not handle.status.complete:
        raise RunStateError(
            f"run {handle.id} has requests still in flight",
            hint=f"`batchmark resume {handle.id}` finishes it (and scores it)",
        )
    endpoint = Endpoint.resolve(run=handle.info, base_url=base_url, api_key=api_key, config=spec)
    _drive(
        handle,
        spec,
        endpoint,
        on_progress=on_progress,
        poll_interval=poll_interval,
        only_scorers=list(scorers) if scorers else None,
    )
    return handle


def cancel(
    ref: str | os.PathLike[str] | Run,
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    base_url: str | None = None,
    api_key: str | None = None,
    on_skipped: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Cancel a run: nothing more is submitted and in-flight batches are canceled.

    Returns the ids of the batches asked to cancel. Their results (requests that
    finished before the cancel still succeed) are collected by ``resume``. A batch
    adopted after a lost create and not yet proved ours is not canceled (it may be
    another run's): ``on_skipped`` receives those ids. The run's settings are read from
    its config snapshot (``Run.settings``: its dataset and templates need not exist any
    more; without a readable snapshot the defaults serve). An emulated run's batches
    stopped with its emulator: its requests not yet submitted are failed, and nothing
    leaves the machine.
    """
    handle = ref if isinstance(ref, Run) else open_run(ref, results)
    try:
        settings = handle.settings()
    except BatchmarkError:
        # A missing or damaged snapshot must not keep batches running (and billed): the
        # cancel needs none of the run's batch settings, and the SDK's API version.
        settings = RunSettings()
    info = handle.info
    endpoint = Endpoint.resolve(run=info, base_url=base_url, api_key=api_key, config=settings)
    with endpoint.serving() as live, contextlib.ExitStack() as stack:
        client = live.client()
        stack.callback(client.close)
        ledger = Ledger(handle.folder.ledger_path)
        stack.callback(ledger.close)
        claims = _claims(handle.folder, live)
        stack.callback(claims.close)
        runner = BatchRunner(ledger, AnthropicBackend(client), settings.batch, claims=claims)
        runner.fail_pending("the run was canceled before this request was submitted")
        canceled = runner.cancel_open_batches()
    if runner.not_canceled and on_skipped is not None:
        on_skipped(runner.not_canceled)
    info["canceled"] = datetime.now(UTC).isoformat()
    handle.folder.write_info(info)
    return canceled
