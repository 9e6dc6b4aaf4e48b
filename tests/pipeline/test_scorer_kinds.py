"""Scorer kinds end to end: the harness runs each kind its way, whoever wrote the scorer.

A batched scorer of the test's own (not a judge) and a combining scorer of its own run
through the real driver against the emulator (it echoes): the batched one's requests go
out as a second batch, and each score is stored with its scorer's spec hash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import batchmark
from batchmark import ConfigError
from batchmark.runs._keys import judge_custom_id
from batchmark.scorers import (
    BatchedScorer,
    CombiningScorer,
    Score,
    ScoreContext,
    _registry,
    register_scorer,
)

from ..reports.support import JUDGE, make_run, write_eval
from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS)  # one variant, one model


class Picky(BatchedScorer):
    """Declines q2, breaks on q3 (asking) and q4 (reading the answer), passes the rest."""

    type_name = "picky"

    def build_request(self, ctx: ScoreContext) -> dict[str, Any] | None:
        if ctx.row_id == "q2":
            return None
        if ctx.row_id == "q3":
            raise RuntimeError("boom")
        content = f"about {ctx.row_id}"
        return {
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": content}],
        }

    def parse(self, ctx: ScoreContext, answer: Mapping[str, Any]) -> Score:
        if ctx.row_id == "q4":
            raise ValueError("unreadable")
        return Score.success(answer=answer["text"])

    def score(self, ctx: ScoreContext) -> Score:
        return Score.failure("declined")


class Both(CombiningScorer):
    """Passes when every scorer it names passed."""

    type_name = "both"
    of: list[str]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.of)

    def combine(self, scores: Mapping[str, Score], ctx: ScoreContext | None = None) -> Score:
        assert ctx is not None and set(scores) == set(self.of)
        ok = all(s.passed for s in scores.values())
        return Score(
            float(ok), ok, f"{ctx.row_id}: {sorted(n for n, s in scores.items() if s.passed)}"
        )


@pytest.fixture(autouse=True)
def _own_scorers() -> Iterator[None]:
    _registry._ensure_builtins()
    saved = dict(_registry._REGISTRY)
    register_scorer("picky", Picky)
    register_scorer("both", Both)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)


SCORERS = [
    {"both": {"of": ["picky", "includes"]}},  # written first, run last
    "picky",
    {"includes": {"target": "What"}},
]


def run(tmp_path: Path) -> batchmark.Run:
    config = write_config(
        tmp_path / "cfg",
        prompts=[{"name": "plain", "user": "{{ question }}"}],
        models=["claude-haiku-4-5"],
        scorers=SCORERS,
    )
    return batchmark.run(config, results=tmp_path / "results")


def test_a_batched_scorer_of_its_own_is_asked_in_a_second_batch(
    live: LiveEmulator, tmp_path: Path
) -> None:
    handle = run(tmp_path)

    submitted = live.submitted()
    by_row = {r["row_id"]: r["custom_id"] for r in handle.requests()}
    assert submitted[:N_CELLS] == list(by_row.values())
    asked = [row["id"] for row in ROWS if row["id"] not in ("q2", "q3")]  # declined, broke
    assert set(submitted[N_CELLS:]) == {judge_custom_id(by_row[row], "picky") for row in asked}
    assert len(submitted) == N_CELLS + len(asked) and len(live.emu.batches) == 2


def test_each_kind_scores_its_way(live: LiveEmulator, tmp_path: Path) -> None:
    scores = {(s["scorer"], s["row_id"]): s for s in run(tmp_path).scores()}

    picky = {row["id"]: scores["picky", row["id"]] for row in ROWS}
    assert (picky["q1"]["passed"], picky["q1"]["answer"]) == (True, "about q1")  # its answer
    assert (picky["q2"]["passed"], picky["q2"]["explanation"]) == (False, "declined")
    assert (
        picky["q3"]["invalid"]
        and "build_request raised RuntimeError: boom" in picky["q3"]["explanation"]
    )
    assert (
        picky["q4"]["invalid"]
        and "parse raised ValueError: unreadable" in picky["q4"]["explanation"]
    )
    assert scores["both", "q1"]["passed"] is True
    assert scores["both", "q1"]["explanation"] == "q1: ['includes', 'picky']"
    assert scores["both", "q2"]["passed"] is False


def test_an_items_scores_are_listed_in_the_configs_order_not_the_order_they_ran_in(
    live: LiveEmulator, tmp_path: Path
) -> None:
    records = list(run(tmp_path).scores())  # they ran plain, batched, then combining
    assert [r["scorer"] for r in records[:3]] == ["both", "picky", "includes"]


def test_every_score_records_its_scorers_spec_hash(live: LiveEmulator, tmp_path: Path) -> None:
    handle = run(tmp_path)
    scorers = handle.spec().build_scorers()
    expected = {s.name: scorers.spec_hash(s.name) for s in scorers}
    assert {r["scorer"]: r["spec_hash"] for r in handle.scores()} == expected
    assert handle.score_specs() == {name: [digest] for name, digest in expected.items()}


def test_scoring_only_a_panel_asks_the_judges_it_combines(tmp_path: Path) -> None:
    run = make_run(tmp_path, scorers=[{"includes": {"target": "{{ answer }}"}}])
    panel = {"judge_panel": {"judges": ["grader"]}, "name": "panel"}
    edited = write_eval(tmp_path / "edited", scorers=[JUDGE, panel])

    batchmark.score(run, config=edited, scorers=["panel"])

    scores = [s for s in run.scores() if s["scorer"] in ("grader", "panel")]
    assert len(scores) == 2 * len(list(run.requests()))
    assert not any(s["invalid"] for s in scores)  # the judge was asked, not skipped


class Sloppy(BatchedScorer):
    """Breaks the contract the ways a plugin can without raising: ``parse`` gives ``True``
    for q1 (not a ``Score``); ``build_request`` puts a set (not JSON) in q5's params."""

    type_name = "sloppy"

    def build_request(self, ctx: ScoreContext) -> dict[str, Any] | None:
        params: dict[str, Any] = {
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": f"about {ctx.row_id}"}],
        }
        if ctx.row_id == "q5" and self.name == "sloppy_params":
            params["metadata"] = {"tags": {"a", "b"}}
        return params

    def parse(self, ctx: ScoreContext, answer: Mapping[str, Any]) -> Any:
        return True if ctx.row_id == "q1" else Score.success()


class Lenient(CombiningScorer):
    """Returns the number of its scorers that passed: not a ``Score``."""

    type_name = "lenient"
    of: list[str]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.of)

    def combine(self, scores: Mapping[str, Score], ctx: ScoreContext | None = None) -> Any:
        return sum(bool(s.passed) for s in scores.values())


def _sloppy_run(tmp_path: Path, scorers: list[Any]) -> batchmark.Run:
    register_scorer("sloppy", Sloppy)
    register_scorer("lenient", Lenient)
    config = write_config(
        tmp_path / "cfg",
        prompts=[{"name": "plain", "user": "{{ question }}"}],
        models=["claude-haiku-4-5"],
        scorers=scorers,
    )
    return batchmark.run(config, results=tmp_path / "results")


def test_a_parse_or_combine_that_returns_no_score_makes_the_item_invalid(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Not a traceback halfway through scoring, with the scorer's old scores deleted.
    handle = _sloppy_run(tmp_path, ["sloppy", {"lenient": {"of": ["sloppy"]}}])

    scores = {(s["scorer"], s["row_id"]): s for s in handle.scores()}
    assert scores["sloppy", "q1"]["invalid"]
    assert "Sloppy.parse returned bool, not a Score" in scores["sloppy", "q1"]["explanation"]
    assert scores["sloppy", "q2"]["passed"] is True
    assert all(scores["lenient", row["id"]]["invalid"] for row in ROWS)
    assert "Lenient.combine returned int, not a Score" in scores["lenient", "q2"]["explanation"]
    assert (handle.path / "scores.jsonl").is_file()


def test_params_that_are_not_json_stop_the_run_naming_the_scorer_and_row(
    live: LiveEmulator, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"scorer 'sloppy_params', row 'q5'.*not JSON"):
        _sloppy_run(tmp_path, [{"sloppy": {"name": "sloppy_params"}}])
