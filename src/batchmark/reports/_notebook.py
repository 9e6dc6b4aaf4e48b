"""How a ``Run`` and a ``Comparison`` show in Jupyter (``_repr_html_``): HTML tables.

A run: its state, then one row per model x variant with the request counts, each scorer's
mean with its 95% interval and n, and the cost. A comparison: the scores table, the
paired differences against the baseline and the cost. An emulated run is marked (the
EMULATED note of every other format), and so are the other notes. Every value from the
data (ids, names, notes) is escaped; the markup is ours only.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from batchmark._errors import BatchmarkError
from batchmark.reports._compare import Comparison, _cost, compare_scores
from batchmark.reports._provenance import EMULATED, provenance_notes
from batchmark.reports._render import (
    _baseline_line,
    _cost_rows,
    _html_table,
    _int,
    _multi_run,
    _score_rows,
    _title,
    _usd,
    html_diff_table,
    score_text,
)

if TYPE_CHECKING:
    import pandas as pd

    from batchmark.runs._run import Run

__all__ = ["comparison_html", "run_html"]

_STYLE = (
    "<style>.batchmark .up{color:#137333;font-weight:bold}"
    ".batchmark .down{color:#b3261e;font-weight:bold}"
    ".batchmark .note{color:#8a5300}.batchmark td.num{text-align:right}</style>"
)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _notes(notes: tuple[str, ...] | list[str]) -> list[str]:
    """Each note as a paragraph; the EMULATED one leads with a bold marker."""
    out = []
    for note in notes:
        head, sep, rest = note.partition(":")
        if head == EMULATED and sep:
            out.append(f'<p class="note"><strong>{EMULATED}</strong>:{_esc(rest)}</p>')
        else:
            out.append(f'<p class="note">note: {_esc(note)}</p>')
    return out


def comparison_html(comp: Comparison) -> str:
    """The comparison's scores, differences and cost as HTML tables."""
    lead = 3 if _multi_run(comp) else 2
    body = [
        _STYLE,
        '<div class="batchmark">',
        f"<p><strong>Comparison</strong> of {_esc(', '.join(comp.runs))} · "
        f"{_esc(_title(comp))}</p>",
        *_notes(comp.notes),
    ]
    header, rows = _score_rows(comp)
    if rows:
        body.append(_html_table(header, rows, lead))
    body.append(f"<p>{_esc(_baseline_line(comp))}</p>")
    if len(comp.diffs):
        body.append(html_diff_table(comp))
    if len(comp.cost):
        header, rows = _cost_rows(comp)
        body.append(_html_table(header, rows, lead))
    body.append("</div>")
    return "".join(body)


def run_html(run: Run) -> str:
    """The run's state and its per model x variant table (counts, scores, cost)."""
    try:
        status = run.status
        info = run.info
        cells = _run_cells(run)
        cost = _cost([run])
        notes = provenance_notes([run])
    except BatchmarkError as err:
        return f"<p><strong>Run {_esc(run.id)}</strong>: cannot be shown: {_esc(err)}</p>"
    failed = f" · {status.failed:,} failed" if status.failed else ""
    head = (
        f"<p><strong>Run {_esc(run.id)}</strong> · eval {_esc(info.get('eval'))} · "
        f"{_esc(status.state)} · {status.done + status.failed:,}/{status.total:,} "
        f"requests ended{failed}</p>"
    )
    header, rows = _run_rows(cells, cost)
    table = _html_table(header, rows, 2) if rows else "<p>no responses yet</p>"
    return "".join([_STYLE, '<div class="batchmark">', head, *_notes(notes), table, "</div>"])


def _run_cells(run: Run) -> pd.DataFrame | None:
    """The run's score cells (mean, 95% CI, n per model x variant x scorer), or None."""
    import pandas as pd

    # Only the columns the statistics read: no explanations or answers in memory.
    keep = ("variant", "model_key", "scorer", "custom_id", "row_id", "epoch", "score")
    records = (
        {"run": run.id, **{k: s[k] for k in keep}, "passed": s["passed"], "invalid": s["invalid"]}
        for s in run.scores()
    )
    scores = pd.DataFrame(records)
    if scores.empty:
        return None
    return compare_scores(scores, runs=[run.id]).cells


def _run_rows(cells: pd.DataFrame | None, cost: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """One row per model x variant (judge requests as ``judge:<name>``): requests,
    succeeded, errored, each scorer's mean [95% CI] n=, batch cost."""
    scored: dict[tuple[str, str], dict[str, str]] = {}
    scorers: list[str] = []
    for c in [] if cells is None else cells.to_dict("records"):
        scored.setdefault((c["model_key"], c["variant"]), {})[c["scorer"]] = score_text(c)
        if c["scorer"] not in scorers:
            scorers.append(c["scorer"])
    header = ["model", "variant", "requests", "succeeded", "errored", *scorers, "batch $"]
    rows = []
    for c in cost.to_dict("records"):
        by_scorer = scored.get((c["model_key"], c["variant"]), {})
        rows.append(
            [
                c["model_key"],
                c["variant"],
                _int(c["requests"]),
                _int(c["succeeded"]),
                _int(c["errored"]),
                *(by_scorer.get(s, "") for s in scorers),
                _usd(c["cost_usd"]),
            ]
        )
    return header, rows
