"""Scorer columns keep the config's order, whichever scorers were scored last (issue 17)."""

from __future__ import annotations

from pathlib import Path

import batchmark
from batchmark.reports._render import terminal_text

from .support import JUDGE, make_run

# A judge first: the order scorers run in (plain, then batched) is not the order written.
SCORERS = [
    JUDGE,
    {"includes": {"target": "{{ answer }}"}},
    {"exact_match": {"target": "{{ answer }}"}},
]
WRITTEN = ["grader", "includes", "exact_match"]


def _header_order(text: str) -> list[str]:
    header = next(line for line in text.splitlines() if "variant" in line)
    return sorted(WRITTEN, key=header.index)


def test_scorer_columns_follow_the_config_before_and_after_scoring_one_again(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, scorers=SCORERS, variants=("plain",))
    before = batchmark.report(run)
    assert list(dict.fromkeys(before.cells["scorer"])) == WRITTEN
    assert _header_order(terminal_text(before)) == WRITTEN

    batchmark.score(run, scorers=["includes"])  # its rows are written again, last

    after = batchmark.report(run)
    assert list(dict.fromkeys(after.cells["scorer"])) == WRITTEN
    assert _header_order(terminal_text(after)) == WRITTEN
    assert list(dict.fromkeys(run.scores_df()["scorer"])) == WRITTEN
    assert list(dict.fromkeys(s["scorer"] for s in run.score_summary())) == WRITTEN
