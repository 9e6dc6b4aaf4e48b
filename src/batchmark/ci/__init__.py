"""ci: verdicts for continuous integration.

``_baseline`` (saved baselines), ``_gates`` (thresholds and regressions declared in a
config's ``ci:`` section) and ``_ci`` (``run_ci`` / ``resume_ci``: a run, its gates and
its verdict).

Depends on ``reports``, ``runs`` and ``config``; never on ``cli``.
"""
