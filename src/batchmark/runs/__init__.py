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
