"""Named migrations of the store's SQLite files, registered by decorator (sqlite-utils
style) and applied on every open.

Each store (the ledger, the response cache, the cross-run registry) has one
``Migrations`` registry; a migration is a function of a connection registered under a
name that never changes::

    ledger_migrations = Migrations("ledger", hint="...")

    @ledger_migrations.migration("0001_schema")
    def _schema(db: sqlite3.Connection) -> None: ...

``apply(db, file)`` runs, in the order they were registered, the migrations not yet
recorded in the file's ``_migrations`` table, each in its own transaction together with
its record; ``pending(db)`` lists them without applying anything (and without writing:
it also works on a read-only connection).

Append-only: a shipped migration is never edited, the next change is the next migration.

A migration that squashes an older chain names it (``replaces``): a file whose
``_migrations`` records every migration of that chain already has the tables the
squashed migration creates, so it is not rebuilt: ``adopt(db)`` (when given) brings it
the rest of the way and the migration is recorded beside the old names. Its data, and
the answers and runs it holds, are kept.

A file whose ``_migrations`` names a migration this registry does not know (one of a
newer version, or a chain this one only partly replaces) was written by another version
of batchmark: ``apply`` refuses it with a ``StoreError`` naming the file and the store's
hint, instead of guessing at its tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from batchmark._errors import StoreError

__all__ = ["Migration", "Migrations", "run_script"]

Migration = Callable[[sqlite3.Connection], None]

_TABLE = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)"


class Migrations:
    """The migrations of one store, in the order they were registered."""

    def __init__(self, store: str, *, hint: str) -> None:
        """``store`` names the kind of file in messages (``ledger``); ``hint`` says what
        to do with a file of another version (``{file}`` is replaced by its path)."""
        self.store = store
        self.hint = hint
        self._migrations: list[tuple[str, Migration]] = []
        # name -> (the chain it squashed, what brings a file of that chain to it)
        self._replaces: dict[str, tuple[frozenset[str], Migration | None]] = {}

    def migration(
        self, name: str, *, replaces: Iterable[str] = (), adopt: Migration | None = None
    ) -> Callable[[Migration], Migration]:
        """Register the decorated function as the migration ``name`` (applied after every
        migration registered before it). ``replaces``: the names of the chain it
        squashes; a file that recorded all of them is adopted (``adopt(db)``, nothing
        when ``None``) instead of migrated."""

        def register(fn: Migration) -> Migration:
            if name in self.names:
                raise ValueError(f"{self.store}: migration {name!r} is registered twice")
            self._migrations.append((name, fn))
            if replaces:
                self._replaces[name] = (frozenset(replaces), adopt)
            return fn

        return register

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._migrations]

    def pending(self, db: sqlite3.Connection) -> list[str]:
        """The migrations (by name) that ``apply`` would run on ``db``; reads only."""
        done = _applied(db)
        return [name for name in self.names if name not in done]

    def check(self, db: sqlite3.Connection, file: str | Path) -> None:
        """Refuse a file written by another version: one that recorded a migration this
        registry does not know (``StoreError`` naming the file and what to do)."""
        applied = _applied(db)
        known = set(self.names)
        for chain, _ in self._replaces.values():
            if chain <= applied:
                known |= chain
        unknown = sorted(applied - known)
        if unknown:
            raise StoreError(
                f"{file}: this {self.store} was written by another version of batchmark "
                f"(its migrations {', '.join(unknown)} are unknown to this one)\n"
                f"  hint: {self.hint.format(file=file)}"
            )

    def apply(self, db: sqlite3.Connection, file: str | Path) -> None:
        """Apply every pending migration, each in one transaction with its record."""
        self.check(db, file)
        if not self.pending(db):
            return
        db.execute(_TABLE)
        for name, fn in self._migrations:
            db.execute("BEGIN IMMEDIATE")
            try:
                # Read again under the write lock: another process opening the same new
                # file (two runs sharing a cache) may have applied it meanwhile.
                applied = _applied(db)
                if name in applied:
                    db.execute("COMMIT")
                    continue
                chain, adopt = self._replaces.get(name, (frozenset(), None))
                if chain and chain <= applied:  # a file of the chain it squashed
                    if adopt is not None:
                        adopt(db)
                else:
                    fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise


def _applied(db: sqlite3.Connection) -> set[str]:
    try:
        return {row[0] for row in db.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError:  # no _migrations table: nothing applied
        return set()


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Run the ``;``-separated statements of ``sql`` inside the caller's transaction
    (``executescript`` would COMMIT first, breaking a migration's atomicity).

    Statements are split where SQLite says one is complete, so a ``;`` inside a comment
    or a string does not cut one; comments inside a ``CREATE`` statement are kept in the
    file's schema, where ``sqlite3 FILE .schema`` shows them.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip() and not all(
        ln.strip().startswith("--") for ln in statement.splitlines() if ln.strip()
    ):
        db.execute(statement)
