"""Where stored scores come from: a report notes scores made by another scorer config.

Every stored score carries its scorer's spec hash; ``report`` and ``compare`` add a
one-line note naming the scorer when the stored scores come from another config than
the run's own, or than another compared run's (``reports/_provenance``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark
import batchmark.cli._report  # noqa: F401  (registers report and compare)
from batchmark.cli import cli
from batchmark.reports._render import render

from .support import JUDGE, isolated, make_run, write_eval

INCLUDES = {"includes": {"target": "{{ answer }}"}}


def strict(judge: dict) -> dict:
    """The same judge, with another grade scale: its verdicts now read differently."""
    edited = copy.deepcopy(judge)
    edited["judge"]["grades"] = {"A": 1.0, "C": 0.25}
    return edited


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, batchmark.Run]]:
    """A run scored with its own config: the judge and an includes scorer."""
    root = tmp_path_factory.mktemp("provenance")
    with isolated(root):
        yield root, make_run(root, scorers=[INCLUDES, JUDGE])


def _provenance(comparison: batchmark.Comparison) -> tuple[str, ...]:
    """The notes about scorer configs (these runs are emulated: that note is tested apart)."""
    return tuple(n for n in comparison.notes if not n.startswith("EMULATED"))


def test_an_emulated_run_is_marked_in_the_report_and_the_comparison(
    runs: tuple[Path, batchmark.Run],
) -> None:
    """Issue 17: an emulated run looked real in reports (an echo judge grades 1.0)."""
    _, run = runs
    (note,) = [n for n in batchmark.report(run).notes if n.startswith("EMULATED")]
    assert "this run came from batchmark's emulator" in note
    from batchmark.reports._render import render

    assert "EMULATED" in render(batchmark.report(run), "html")
    assert "EMULATED" in render(batchmark.report(run), "md")


def test_a_run_scored_with_its_own_config_has_no_note(runs: tuple[Path, batchmark.Run]) -> None:
    _, run = runs
    assert _provenance(batchmark.report(run)) == ()


def test_scoring_again_with_an_edited_scorer_is_noted_naming_that_scorer(tmp_path: Path) -> None:
    run = make_run(tmp_path, scorers=[INCLUDES, JUDGE])
    edited = write_eval(tmp_path / "edited", scorers=[INCLUDES, strict(JUDGE)])

    batchmark.score(run, config=edited)

    [note] = _provenance(batchmark.report(run))
    assert note.startswith(
        f"run {run.id}: the scores of 'grader' come from another config of that scorer "
        "than the run's (spec "
    )
    assert note.endswith(f"`batchmark score {run.id}` scores them with the run's config")
    assert "\n" not in note

    batchmark.score(run)  # with the run's own config again
    assert _provenance(batchmark.report(run)) == ()


def test_scores_of_a_scorer_the_run_config_lacks_are_noted(tmp_path: Path) -> None:
    run = make_run(tmp_path, scorers=[INCLUDES])
    edited = write_eval(tmp_path / "edited", scorers=[INCLUDES, {"exact_match": {"target": "4"}}])

    batchmark.score(run, config=edited, scorers=["exact_match"])

    assert _provenance(batchmark.report(run)) == (
        f"run {run.id}: the scores of 'exact_match' come from a scorer that is not in the "
        "run's config",
    )


def test_the_note_shows_in_every_format_and_in_the_command(tmp_path: Path) -> None:
    run = make_run(tmp_path, scorers=[INCLUDES, JUDGE])
    batchmark.score(run, config=write_eval(tmp_path / "edited", scorers=[INCLUDES, strict(JUDGE)]))
    comparison = batchmark.report(run)
    [note] = _provenance(comparison)

    assert f"note: {note}" in render(comparison, "table", width=1000)
    assert f"> **note:** {note}" in render(comparison, "md")
    assert f"note: {note}" in render(comparison, "html").replace("&#x27;", "'")
    assert '"notes": [' in render(comparison, "json")
    got = CliRunner().invoke(cli, ["report", run.id, "--results", str(tmp_path / "results")])
    assert got.exit_code == 0, got.output
    assert f"note: {note}" in " ".join(got.output.split())  # wrapped to the terminal


def test_comparing_runs_scored_with_other_judge_settings_is_noted(
    runs: tuple[Path, batchmark.Run], tmp_path: Path
) -> None:
    _, first = runs
    second = make_run(tmp_path, scorers=[INCLUDES, strict(JUDGE)])

    [note] = _provenance(batchmark.compare([first, second]))
    assert note.startswith("the scores of 'grader' come from different configs of that scorer ")
    assert first.id in note and second.id in note
    assert note.endswith("their differences mix scorer configs")


def test_comparing_runs_scored_alike_has_no_note(
    runs: tuple[Path, batchmark.Run], tmp_path: Path
) -> None:
    _, first = runs
    second = make_run(tmp_path, scorers=[INCLUDES, JUDGE])
    assert _provenance(batchmark.compare([first, second])) == ()
