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
A file whose ``_migrations`` names a migration this registry does not know was written by
another version of batchmark (a newer one, or a pre-release one whose chain was squashed
into ``0001_schema``): ``apply`` refuses it with a ``StoreError`` naming the file and the
store's hint, instead of guessing at its tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
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

    def migration(self, name: str) -> Callable[[Migration], Migration]:
        """Register the decorated function as the migration ``name`` (applied after every
        migration registered before it)."""

        def register(fn: Migration) -> Migration:
            if name in self.names:
                raise ValueError(f"{self.store}: migration {name!r} is registered twice")
            self._migrations.append((name, fn))
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
        unknown = sorted(_applied(db) - set(self.names))
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
                if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    db.execute("COMMIT")
                    continue
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
