"""The run's progress line fits an 80-column terminal (issue 17: it was cut to
``requests ━━━━ 400… 0:00:…``): done/total, the requests' states and the elapsed time."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from batchmark.cli._common import progress_display
from batchmark.runs._batches import Progress

ELAPSED = re.compile(r"\d+:\d\d:\d\d$")


def _line(progress: Progress, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    with progress_display(quiet=False, console=console) as update:
        update(progress)
    [line] = [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    return line


def _batches(n: int, open_: int) -> list[dict[str, object]]:
    return [{"collected": i >= open_} for i in range(n)]


@pytest.mark.parametrize(
    ("progress", "shown"),
    [
        (Progress(total=400, states={"done": 400}, batches=_batches(2, 0)), ["400/400"]),
        (
            Progress(total=400, states={"done": 250, "submitted": 150}, batches=_batches(2, 2)),
            ["250/400", "150 in flight", "batches 2/2 open"],
        ),
        (
            Progress(
                total=100_000,
                states={"done": 40_000, "submitted": 50_000, "pending": 9_000, "failed": 1_000},
                batches=_batches(5, 4),
            ),
            ["41000/100000", "50000 in flight"],
        ),
    ],
)
def test_the_progress_line_fits_80_columns_with_counts_states_and_time(
    progress: Progress, shown: list[str]
) -> None:
    line = _line(progress)
    assert len(line) <= 80, line
    assert line.startswith("requests ")
    assert ELAPSED.search(line), line
    for text in shown:
        assert text in line, line


def test_on_a_narrower_terminal_the_states_are_cut_not_the_counts_or_the_time() -> None:
    progress = Progress(
        total=100_000,
        states={"done": 40_000, "submitted": 60_000},
        batches=_batches(3, 3),
        waiting="waiting for queue room",
    )
    line = _line(progress, width=60)
    assert len(line) <= 60, line
    assert "40000/100000" in line and ELAPSED.search(line) and "…" in line, line
