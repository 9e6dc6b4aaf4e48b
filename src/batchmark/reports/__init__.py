"""reports: from stored scores to tables people read.

``_stats`` (means, intervals, paired differences), ``_compare`` (variants, models and
runs side by side, paired by item), ``_render`` (terminal, Markdown, CSV, JSON) and ``_html``
(the HTML report, streamed).

Depends on ``runs`` (the ``Run`` handle) and the foundation; never on ``ci`` or ``cli``.
"""

from batchmark._facade import lazy_exports as _lazy_exports

_ORIGIN = {
    "batchmark.reports._compare": (
        "Comparison",
        "compare",
        "report",
    ),
    "batchmark.reports._stats": (
        "MeanCI",
        "McNemar",
        "PairedDiff",
        "item_diff",
        "mcnemar_exact",
        "mean_ci",
        "paired_diff",
        "pass_at_k",
        "pass_hat_k",
    ),
}
__all__ = [
    "compare",
    "Comparison",
    "item_diff",
    "McNemar",
    "mcnemar_exact",
    "mean_ci",
    "MeanCI",
    "paired_diff",
    "PairedDiff",
    "pass_at_k",
    "pass_hat_k",
    "report",
]
__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
