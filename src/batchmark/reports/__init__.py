"""reports: from stored scores to tables people read.

``_stats`` (means, intervals, paired differences), ``_compare`` (variants, models and
runs side by side, paired by item) and ``_render`` (terminal, Markdown, HTML, CSV, JSON).

Depends on ``runs`` (the ``Run`` handle) and the foundation; never on ``ci`` or ``cli``.
"""
