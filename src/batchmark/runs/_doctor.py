"""``doctor``: check a run's files, salvage the batch ids a damaged ledger still holds, and
list the API key's recent batches, so no batch is left orphaned by a damaged run.

Nothing here writes: the ledger and the cache are opened read-only, a damaged ledger is
read table by table (what SQLite can still read) and, where SQL cannot read it at all,
scanned byte by byte for batch ids (``msgbatch_…``, in the file and its WAL).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from batchmark._errors import BatchmarkError
from batchmark.config._load import load_settings
from batchmark.config._schema import RunSettings
from batchmark.runs._endpoint import Endpoint
from batchmark.runs._run import DEFAULT_RESULTS, command_ref
from batchmark.runs._store import RunFolder, resolve_run

__all__ = ["Check", "Diagnosis", "KeyBatch", "SalvagedBatch", "diagnose"]

_BATCH_ID = re.compile(rb"msgbatch_[A-Za-z0-9]{8,64}")
_SINCE_MARGIN = timedelta(minutes=5)  # clocks differ; a create may precede run.json's time


@dataclass(frozen=True, slots=True)
class Check:
    """One file of the run: ``ok``, and what was found."""

    name: str
    path: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SalvagedBatch:
    """A batch id found in the run's ledger, and where (``batches``, ``intents``,
    ``requests``, or ``bytes`` when only a raw scan of the file found it)."""

    batch_id: str
    found_in: str
    status: str | None = None
    n_requests: int | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class KeyBatch:
    """A batch of the API key, as the API lists it; ``in_ledger``: this run holds its id."""

    batch_id: str
    created_at: str
    status: str
    requests: int
    counts: dict[str, int]
    in_ledger: bool


@dataclass
class Diagnosis:
    """What ``doctor`` found about one run."""

    run_id: str
    path: str
    checks: list[Check] = field(default_factory=list)
    salvaged: list[SalvagedBatch] = field(default_factory=list)
    key_batches: list[KeyBatch] | None = None
    key_batches_note: str = ""
    next_steps: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "run_id": self.run_id,
            "path": self.path,
            "healthy": self.healthy,
            "checks": [asdict(c) for c in self.checks],
            "salvaged_batches": [asdict(b) for b in self.salvaged],
            "key_batches": None
            if self.key_batches is None
            else [asdict(b) for b in self.key_batches],
            "key_batches_note": self.key_batches_note,
            "next_steps": self.next_steps,
        }


def diagnose(
    ref: str | os.PathLike[str],
    *,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    base_url: str | None = None,
    api_key: str | None = None,
    list_batches: bool = True,
    limit: int = 100,
) -> Diagnosis:
    """Check run ``ref``'s files, salvage its batch ids and list the key's batches.

    ``base_url`` defaults to the endpoint the run recorded; ``list_batches=False`` asks
    the API nothing. At most ``limit`` of the key's batches are listed, newest first,
    created since the run was (a few minutes' margin for clocks).
    """
    folder = resolve_run(ref, Path(results))
    diagnosis = Diagnosis(run_id=folder.id, path=str(folder.path))
    info = _check_info(folder, diagnosis)
    settings = _check_config(folder, info, diagnosis)
    ledger_ok = _check_ledger(folder, diagnosis)
    diagnosis.salvaged = salvage_batch_ids(folder.ledger_path)
    # What is missing to reach the endpoint (a key, a URL's credentials) only keeps the
    # key's batches from being listed: the files are checked all the same.
    endpoint = (
        Endpoint.resolve(
            run=info, base_url=base_url, api_key=api_key, config=settings, strict=False
        )
        if info
        else None
    )
    cache = endpoint.cache_path(folder.results_root) if endpoint is not None else None
    if cache is not None:
        _check_cache(cache, diagnosis)
    if list_batches and endpoint is not None:
        _list_key_batches(info, endpoint, diagnosis, limit)
    diagnosis.next_steps = _next_steps(folder, info, diagnosis, ledger_ok, cache)
    return diagnosis


# --- the files ------------------------------------------------------------------------------


def _check_info(folder: RunFolder, diagnosis: Diagnosis) -> dict[str, Any]:
    path = folder.path / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in ("run_id", "eval", "endpoint", "created_at") if k not in info]
    except (OSError, ValueError) as err:
        diagnosis.checks.append(Check("run.json", str(path), False, f"unreadable: {err}"))
        return {}
    if missing:
        detail = f"lacks {', '.join(missing)}"
        diagnosis.checks.append(Check("run.json", str(path), False, detail))
    else:
        endpoint = info["endpoint"] + (" (emulated)" if info.get("emulated") else "")
        detail = f"eval {info['eval']}, endpoint {endpoint}, made {info['created_at']}"
        diagnosis.checks.append(Check("run.json", str(path), True, detail))
    return info


def _check_config(
    folder: RunFolder, info: dict[str, Any], diagnosis: Diagnosis
) -> RunSettings | None:
    """The snapshot's settings (the run's API version, for listing), if they can be read."""
    path = folder.path / "config.yaml"
    try:
        text = path.read_text(encoding="utf-8")
        settings = load_settings(info.get("config_path", path), text=text)
    except (OSError, UnicodeDecodeError) as err:
        diagnosis.checks.append(Check("config.yaml", str(path), False, f"unreadable: {err}"))
        return None
    except BatchmarkError as err:
        diagnosis.checks.append(Check("config.yaml", str(path), False, f"damaged: {err}"))
        return None
    size = len(text.encode("utf-8"))
    diagnosis.checks.append(
        Check("config.yaml", str(path), True, f"the config snapshot, {size:,} bytes")
    )
    return settings


def _integrity(path: Path) -> tuple[bool, str, sqlite3.Connection | None]:
    """(ok, what was found, a read-only connection when the file could be opened)."""
    if not path.is_file():
        return False, "missing", None
    if path.stat().st_size == 0:
        return False, "empty (0 bytes)", None
    from batchmark.runs._sqlite import connect_readonly

    try:
        db = connect_readonly(path)
    except sqlite3.DatabaseError as err:
        return False, f"cannot be opened: {err}", None
    try:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check(10)")]
    except sqlite3.DatabaseError as err:
        return False, f"damaged: {err}", db
    if problems != ["ok"]:
        return False, "damaged: " + "; ".join(problems[:3]), db
    return True, "integrity check ok", db


def _check_ledger(folder: RunFolder, diagnosis: Diagnosis) -> bool:
    path = folder.ledger_path
    ok, detail, db = _integrity(path)
    if db is not None:
        try:
            if ok:
                states = dict(db.execute("SELECT state, count(*) FROM requests GROUP BY state"))
                n_batches = db.execute("SELECT count(*) FROM batches").fetchone()[0]
                counts = ", ".join(f"{n:,} {s}" for s, n in sorted(states.items()))
                detail += f"; {counts or 'no requests'}; {n_batches} batch(es)"
        except sqlite3.DatabaseError as err:
            ok, detail = False, f"damaged: {err}"
        finally:
            db.close()
    diagnosis.checks.append(Check("ledger", str(path), ok, detail))
    return ok


def _check_cache(path: Path, diagnosis: Diagnosis) -> None:
    if not path.exists():
        diagnosis.checks.append(Check("cache", str(path), True, "none yet"))
        return
    ok, detail, db = _integrity(path)
    if db is not None:
        db.close()
    diagnosis.checks.append(Check("cache", str(path), ok, detail))


def salvage_batch_ids(ledger: Path) -> list[SalvagedBatch]:
    """Every batch id the ledger still holds: table by table through SQLite as far as it
    can read, then a byte scan of the file and its WAL for ids SQL could not reach."""
    found: dict[str, SalvagedBatch] = {}
    from batchmark.runs._sqlite import connect_readonly

    try:
        db = connect_readonly(ledger)
    except (sqlite3.DatabaseError, OSError):
        db = None
    if db is not None:
        queries = [
            ("batches", "SELECT batch_id, status, n_requests, created_at FROM batches"),
            (
                "intents",
                "SELECT batch_id, status, n_requests, datetime(created_at, 'unixepoch') "
                "FROM intents WHERE batch_id IS NOT NULL",
            ),
            (
                "requests",
                "SELECT batch_id, NULL, count(*), NULL FROM requests "
                "WHERE batch_id IS NOT NULL GROUP BY batch_id",
            ),
        ]
        for table, sql in queries:
            try:
                for batch_id, status, n, created in db.execute(sql):
                    if batch_id and batch_id not in found:
                        found[batch_id] = SalvagedBatch(batch_id, table, status, n, created)
            except sqlite3.DatabaseError:
                continue  # this table is unreadable: the byte scan below still looks
        db.close()
    for batch_id in _scan_batch_ids([ledger, ledger.with_name(ledger.name + "-wal")]):
        if not any(known.startswith(batch_id) for known in found):
            found[batch_id] = SalvagedBatch(batch_id, "bytes")
    return list(found.values())


def _scan_batch_ids(paths: list[Path]) -> list[str]:
    """Batch ids in the raw bytes of ``paths``.

    SQLite stores a row's text columns side by side, so an id is often followed by the
    next column's characters (``msgbatch_01…2026``, ``msgbatch_01…succeeded``). An id is
    random, so matches sharing their first 20 characters after ``msgbatch_`` are the same
    id: it is what they have in common.
    """
    groups: dict[str, list[str]] = {}
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for match in _BATCH_ID.finditer(data):
            text = match.group().decode()
            groups.setdefault(text[: len("msgbatch_") + 20], []).append(text)
    return [os.path.commonprefix(members) for members in groups.values()]


# --- the key's batches ----------------------------------------------------------------------


def _list_key_batches(
    info: dict[str, Any], endpoint: Endpoint, diagnosis: Diagnosis, limit: int
) -> None:
    if endpoint.emulated:
        diagnosis.key_batches_note = (
            "the run was made with --emulate: its batches lived in an in-process emulator "
            "that stopped with it"
        )
        return
    import anthropic

    since = _created_at(info)
    known = {b.batch_id for b in diagnosis.salvaged}
    try:
        client = endpoint.client(max_retries=2)
    except BatchmarkError as err:
        diagnosis.key_batches_note = f"the key's batches were not listed: {err}"
        return
    batches: list[KeyBatch] = []
    try:
        for batch in client.messages.batches.list(limit=min(limit, 100)):
            if since is not None and batch.created_at < since - _SINCE_MARGIN:
                break
            counts = batch.request_counts.model_dump()
            batches.append(
                KeyBatch(
                    batch_id=batch.id,
                    created_at=batch.created_at.isoformat(),
                    status=batch.processing_status,
                    requests=sum(counts.values()),
                    counts=counts,
                    in_ledger=batch.id in known,
                )
            )
            if len(batches) >= limit:
                break
    except anthropic.APIError as err:
        diagnosis.key_batches_note = f"the key's batches could not be listed: {err}"
        return
    finally:
        client.close()
    diagnosis.key_batches = batches
    when = f"since {since.isoformat()}" if since is not None else "most recent first"
    diagnosis.key_batches_note = f"the key's batches ({when}; at most {limit})"


def _created_at(info: dict[str, Any]) -> datetime | None:
    try:
        created = datetime.fromisoformat(info["created_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


# --- what to do -----------------------------------------------------------------------------


def _next_steps(
    folder: RunFolder,
    info: dict[str, Any],
    diagnosis: Diagnosis,
    ledger_ok: bool,
    cache: Path | None,
) -> list[str]:
    steps: list[str] = []
    config = info.get("config_path", "CONFIG")
    emulate = " --emulate" if info.get("emulated") else ""
    if not ledger_ok:
        ledger = folder.ledger_path
        steps.append(
            f"the ledger cannot be trusted: move it aside (`mv {ledger} {ledger}.bad`) and "
            f"run the config again (`batchmark run {config}{emulate}`); answers already in "
            "the response cache are not paid for again"
        )
        if not info.get("emulated"):
            steps.append(
                "batches still in_progress above are running and billed: keep their ids to "
                "fetch their results or cancel them through the API "
                "(`client.messages.batches.results(ID)` / `.cancel(ID)`)"
            )
    cache_check = next((c for c in diagnosis.checks if c.name == "cache"), None)
    if cache is not None and cache_check is not None and not cache_check.ok:
        steps.append(
            f"the response cache is damaged: move it aside (`mv {cache} {cache}.bad`) or "
            "run with --no-cache; a new cache starts with the next run"
        )
    if any(not c.ok for c in diagnosis.checks if c.name in ("run.json", "config.yaml")):
        steps.append(
            f"the run's own files are damaged: run the config again (`batchmark run {config}"
            f"{emulate}`)"
        )
    if not steps:
        ref = command_ref(folder.path)
        steps.append(
            f"nothing to repair: `batchmark status {ref}` shows where it stands"
            + ("" if info.get("emulated") else f", `batchmark resume {ref}` continues it")
        )
    return steps
