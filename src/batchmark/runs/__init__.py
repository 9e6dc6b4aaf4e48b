"""runs: from an ``EvalSpec`` to stored responses and scores.

The flow, one module per box:

- ``_datasets``: rows from JSONL / CSV / Parquet / ``datasets`` files;
- ``_grid``: cells (row x variant x model x epoch) rendered into requests;
  ``_keys``: a request's canonical params bytes, cache key and custom_id;
- ``_estimate``: tokens and cost before anything is sent, the budget cap;
- ``_ledger``: a run's ledger and its requests' state machine (one method per
  transition); ``_store``: run folders and the response cache; ``_schema``: the tables
  of both, registered as migrations (``_migrations``); ``_sqlite``: opening, transactions
  and the failures a user can fix; ``_claims``: the cross-run registry of batches and
  requests in flight;
- ``_endpoint``: where a command's requests go (URL, key, API version, the in-process
  emulator), resolved once per command;
- ``_packing``: requests into batches within the API's limits;
  ``_backend``: the Message Batches API through the ``anthropic`` SDK;
  ``_batches``: submit and poll, the loop (used for candidates and judges), with
  ``_collect`` (results into the ledger), ``_recovery`` (lost creates, 404s, adoption),
  ``_waiting`` (requests another run has in flight) and ``_crashpoints`` (kill -9 tests);
- ``_responses``: each request's final answer and per-cell totals;
  ``_scoring``: judge batches, then per-item scores;
- ``_driver``: ``run`` / ``resume`` / ``score`` / ``cancel`` wiring the above;
  ``_run``: the ``Run`` handle on a run folder; ``_doctor``: checking a damaged one.

Depends on ``config``, ``scorers``, ``emulator`` (``--emulate``) and the foundation;
never on ``reports``, ``ci`` or ``cli``.
"""

from batchmark._facade import lazy_exports as _lazy_exports

_ORIGIN = {
    "batchmark.runs._driver": (
        "cancel",
        "resume",
        "run",
        "score",
    ),
    "batchmark.runs._estimate": (
        "Estimate",
        "check_budget",
        "estimate",
    ),
    "batchmark.runs._grid": (
        "Request",
        "ValidationReport",
        "expand",
        "make_custom_id",
        "validate_spec",
    ),
    "batchmark.runs._run": (
        "Run",
        "RunStatus",
        "open_run",
    ),
}
__all__ = [
    "cancel",
    "check_budget",
    "Estimate",
    "estimate",
    "expand",
    "make_custom_id",
    "open_run",
    "Request",
    "resume",
    "Run",
    "run",
    "RunStatus",
    "score",
    "validate_spec",
    "ValidationReport",
]
__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
