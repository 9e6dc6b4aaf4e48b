"""ci: verdicts for continuous integration.

``_baseline`` (saved baselines), ``_gates`` (thresholds and regressions declared in a
config's ``ci:`` section) and ``_ci`` (``run_ci`` / ``resume_ci``: a run, its gates and
its verdict).

Depends on ``reports``, ``runs`` and ``config``; never on ``cli``.
"""

from batchmark._facade import lazy_exports as _lazy_exports

_ORIGIN = {
    "batchmark.ci._ci": (
        "BaselineError",
        "CiResult",
        "load_baseline",
        "markdown_summary",
        "resume_ci",
        "run_ci",
        "save_baseline",
        "write_junit",
    ),
}
__all__ = [
    "BaselineError",
    "CiResult",
    "load_baseline",
    "markdown_summary",
    "resume_ci",
    "run_ci",
    "save_baseline",
    "write_junit",
]
__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
