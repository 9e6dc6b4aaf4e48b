"""What the store's SQLite files hold: the ledger's and the response cache's schemas, each
in one piece, registered as their first migration (``_migrations``).

Before the first release the ledger's schema grew by a chain of four migrations
(``m001_initial`` … ``m004_scores_by_seq``) and the cache's by two (``c001_initial``,
``c002_staged``), each rebuilding the tables of the one before. No ledger was released,
so the chains are squashed into ``0001_schema``: the tables, columns and indexes the
chains ended with, plus ``scores.spec_hash``. Later changes are new migrations
(``@ledger_migrations.migration("0002_...")``), never edits of this one.

A file the pre-release chain wrote already has these tables (the ledger's without
``scores.spec_hash``), so it is adopted, not rebuilt (``0001_schema`` is recorded beside
the old names): a response cache as it is, so the answers it holds, paid for, keep being
served; a ledger with ``spec_hash`` added (``NULL``: its scores predate spec hashes), so
its run can still be resumed, canceled, scored and reported. A ledger or cache written by
only part of a chain, or by a newer version, is refused: opening one raises a
``StoreError`` naming the file (its ``_migrations`` records names this version does not
know, see ``_migrations``).
"""

from __future__ import annotations

import sqlite3

from batchmark.runs._migrations import Migrations, run_script

__all__ = ["CACHE_SCHEMA", "LEDGER_BLOBS", "LEDGER_SCHEMA", "cache_migrations", "ledger_migrations"]

ledger_migrations = Migrations(
    "ledger",
    hint="a run made by another build of batchmark cannot be opened by this version: "
    "run its config again (`batchmark run CONFIG`), or open it with the version that made it",
)
cache_migrations = Migrations(
    "response cache",
    hint="move it aside (`mv {file} {file}.old`): the next run starts a new cache "
    "(answers only the old one held are asked again)",
)

# --- the ledger: one run's requests, intents, batches, responses and scores ------------
#
# A request's ``state`` (``_ledger.RequestState``) changes only through the ``Ledger``'s
# methods, each one transaction. Its ``seq`` (grid order) is the row id of ``requests``
# and the key of everything keyed per request: rows are narrow (params apart) and stored
# in grid order, so state changes rewrite few pages, and results, which arrive in random
# order, are inserted into integer B-trees rather than ones of ~60-byte custom_ids.

LEDGER_SCHEMA = """
CREATE TABLE requests (
    seq       INTEGER PRIMARY KEY,   -- grid order; the key of params, responses, scores
    custom_id TEXT NOT NULL UNIQUE,  -- what the API echoes back with each result
    variant   TEXT NOT NULL,
    model_key TEXT NOT NULL,
    model     TEXT NOT NULL,
    row_id    TEXT NOT NULL,
    epoch     INTEGER NOT NULL,
    cache_key TEXT NOT NULL,         -- hash of the full request content (response cache)
    state     TEXT NOT NULL,         -- pending | waiting | submitting | submitted | done | failed
    attempts  INTEGER NOT NULL DEFAULT 0,  -- creates it was part of (0: a cache hit)
    intent_id INTEGER,               -- intents.id of its latest create
    batch_id  TEXT,                  -- batches.batch_id of its latest batch
    kind      TEXT NOT NULL DEFAULT 'candidate',  -- candidate | judge
    parent_id TEXT,                  -- a judge request's candidate (custom_id)
    scorer    TEXT                   -- a judge request's judge
);
CREATE INDEX requests_by_state ON requests (state, seq);
CREATE INDEX requests_by_batch ON requests (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX requests_by_intent ON requests (intent_id) WHERE intent_id IS NOT NULL;
CREATE INDEX requests_by_kind ON requests (kind, seq);

-- Params are read only to build a create body and to score: apart, they stay out of the
-- pages every state change rewrites.
CREATE TABLE params (
    seq    INTEGER PRIMARY KEY,      -- requests.seq
    params BLOB NOT NULL             -- the Messages API params, as JSON
);

-- A chunk of requests about to be created as one batch, recorded before the create is
-- sent: a process killed before the batch id is recorded leaves the intent to settle.
CREATE TABLE intents (
    id          INTEGER PRIMARY KEY,
    created_at  REAL NOT NULL,       -- local clock, just before the create was sent
    n_requests  INTEGER NOT NULL,
    status      TEXT NOT NULL,       -- open | sending | created | abandoned
    batch_id    TEXT
);

CREATE TABLE batches (
    batch_id     TEXT PRIMARY KEY,   -- an id retired for a reused one ends in ~N
    intent_id    INTEGER,
    created_at   TEXT,               -- the API's, ISO 8601
    n_requests   INTEGER NOT NULL,
    status       TEXT NOT NULL,      -- in_progress | canceling | ended | archived | lost
                                     -- | lost, resent | foreign
    counts       TEXT,               -- the API's request counts, as JSON
    collected    INTEGER NOT NULL DEFAULT 0,
    adopted      INTEGER NOT NULL DEFAULT 0,  -- 1: adopted, unverified; 2: verified
    recorded_at  REAL NOT NULL
);

-- Every attempt's answer; a request's final one is that of attempt = requests.attempts.
CREATE TABLE responses (
    seq        INTEGER NOT NULL,     -- requests.seq
    attempt    INTEGER NOT NULL,
    batch_id   TEXT,                 -- NULL: from the cache, or failed without a batch
    status     TEXT NOT NULL,        -- succeeded | errored | expired | canceled | missing | lost
    data       BLOB NOT NULL,        -- the message (JSON), or {error_type, error_message}
    PRIMARY KEY (seq, attempt)
);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE scores (
    seq         INTEGER NOT NULL,    -- requests.seq of the candidate
    scorer      TEXT NOT NULL,
    value       REAL,
    passed      INTEGER,
    invalid     INTEGER NOT NULL DEFAULT 0,
    explanation TEXT NOT NULL DEFAULT '',
    answer      TEXT,                -- JSON of what was extracted / compared
    spec_hash   TEXT,                -- the hash of the scorer's config that produced it
    PRIMARY KEY (seq, scorer)
);
"""


def _adopt_pre_release_ledger(db: sqlite3.Connection) -> None:
    """A ledger of the pre-release chain: the same tables, but for ``scores.spec_hash``."""
    db.execute("ALTER TABLE scores ADD COLUMN spec_hash TEXT")


@ledger_migrations.migration(
    "0001_schema",
    replaces=("m001_initial", "m002_judges_and_scores", "m003_params_apart", "m004_scores_by_seq"),
    adopt=_adopt_pre_release_ledger,
)
def _ledger_schema(db: sqlite3.Connection) -> None:
    run_script(db, LEDGER_SCHEMA)


# Images and PDFs once per content (``runs._content``, ``runs._blobs``): params hold a
# reference where the base64 data goes, and ``sent_size`` the params' size with it in.
LEDGER_BLOBS = """
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,         -- of the raw bytes; the reference in params names it
    data   BLOB NOT NULL             -- the base64 text, as sent
);
ALTER TABLE params ADD COLUMN sent_size INTEGER;  -- NULL: length(params), no blob in it
"""


@ledger_migrations.migration("0002_blobs")
def _ledger_blobs(db: sqlite3.Connection) -> None:
    run_script(db, LEDGER_BLOBS)


# --- the response cache: succeeded answers by request content, one file per endpoint ---

CACHE_SCHEMA = """
CREATE TABLE responses (
    cache_key  TEXT PRIMARY KEY,     -- hash of the full request content
    data       BLOB NOT NULL,        -- the stored message, as JSON
    created_at REAL NOT NULL
);

-- Answers staged by collects still running, merged into responses once per batch in key
-- order (an append here, no index): each page of responses' key index is then written
-- about once per batch instead of once per 10,000-answer chunk.
CREATE TABLE staged (
    cache_key  TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_at REAL NOT NULL
);
"""


# The pre-release chain ended with these very tables: its files are adopted unchanged.
@cache_migrations.migration("0001_schema", replaces=("c001_initial", "c002_staged"))
def _cache_schema(db: sqlite3.Connection) -> None:
    run_script(db, CACHE_SCHEMA)
