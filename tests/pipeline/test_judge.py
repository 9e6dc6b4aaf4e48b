"""Scorers end to end: deterministic scores and LLM judges as a second batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import batchmark
from batchmark.emulator import parse_faults
from batchmark.scorers import VERDICT_TOOL

from .support import ROWS, LiveEmulator, write_config

N_CELLS = len(ROWS) * 2 * 2
JUDGE = {
    "judge": {
        "name": "grader",
        "model": "claude-haiku-4-5",
        "system": "You grade answers.",
        "rubric": "Question: {{ question }}\nReference: {{ reference }}\nResponse: {{ response }}",
        "reference": "{{ answer }}",
        "grades": {"A": 1.0, "C": 0.0},
    }
}
SCORERS = [{"includes": {"target": "{{ answer }}"}}, JUDGE]


def responder(params: dict[str, Any]) -> Any:
    """Candidates: answer rows q1-q3 right, the rest wrong. The judge: A iff right."""
    text = params["messages"][-1]["content"]
    if isinstance(text, list):
        text = "".join(b.get("text", "") for b in text)
    if params.get("tool_choice", {}).get("name") == VERDICT_TOOL:
        ref = text.split("Reference: ")[1].split("\n")[0]
        answer = text.split("Response: ")[1]
        grade = "A" if ref in answer else "C"
        verdict = {"reasoning": "-", "grade": grade}
        return [{"type": "tool_use", "name": VERDICT_TOOL, "input": verdict}]
    n = int(text.split("What is ")[1].split(" ")[0])
    return f"It is {2 * n}." if n <= 3 else "I do not know."


@pytest.fixture
def judged(live: LiveEmulator) -> LiveEmulator:
    live.emu.responder = responder
    return live


def _judge_ids(run: batchmark.Run) -> list[str]:
    return [r["custom_id"] for r in run.scores() if r["scorer"] == "grader"]


def test_scores_are_computed_per_item_and_scorer(judged: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    run = batchmark.run(config, results=tmp_path / "results")

    scores = list(run.scores())
    assert len(scores) == N_CELLS * 2
    for s in scores:
        right = int(s["row_id"][1:]) <= 3
        assert s["passed"] is right, s
        assert s["score"] == (1.0 if right else 0.0)
    summary = {(c["model"], c["variant"], c["scorer"]): c for c in run.score_summary()}
    cell = summary["claude-haiku-4-5", "plain", "grader"]
    assert (cell["n"], cell["mean"], cell["invalid"]) == (len(ROWS), 0.5, 0)
    assert (run.path / "scores.jsonl").read_text().count("\n") == N_CELLS * 2


def test_judge_requests_are_a_second_batch_after_the_candidates(
    judged: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    batchmark.run(config, results=tmp_path / "results")

    batches = sorted(judged.emu.batches.values(), key=lambda b: b.id)
    submitted = judged.submitted()
    assert len(submitted) == 2 * N_CELLS
    candidates, judges = submitted[:N_CELLS], submitted[N_CELLS:]
    assert all(c.startswith("j-") for c in judges)
    assert not any(c.startswith("j-") for c in candidates)
    assert len(batches) == 2


def test_judge_ids_derive_from_the_candidate_and_the_judge(
    judged: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    run = batchmark.run(config, results=tmp_path / "results")

    from batchmark.runs._keys import judge_custom_id

    expected = {judge_custom_id(r["custom_id"], "grader") for r in run.requests()}
    assert set(judged.submitted()[N_CELLS:]) == expected


def test_failed_candidates_are_not_judged_and_score_as_failures(
    judged: LiveEmulator, tmp_path: Path
) -> None:
    judged.emu.faults = parse_faults({"errored_fatal": 1.0})
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    run = batchmark.run(config, results=tmp_path / "results")

    assert len(judged.submitted()) == N_CELLS  # no judge batch at all
    assert judged.emu.fault_state.fired == {"errored_fatal": N_CELLS}
    assert {(s["passed"], s["invalid"]) for s in run.scores()} == {(False, False)}


def test_faults_in_the_judge_batch_are_retried(judged: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS, batch={"max_attempts": 8})
    judged.emu.faults = parse_faults(
        {"errored": 0.3, "http_529": 0.2, "drop_results": 0.3, "retry_after_ms": 10}
    )
    run = batchmark.run(config, results=tmp_path / "results")

    grader = [s for s in run.scores() if s["scorer"] == "grader"]
    assert len(grader) == N_CELLS and not any(s["invalid"] for s in grader)
    # Some judge requests needed a second attempt: sent again, or answered from the cache
    # when another judge request of the same content (the same answer to the same
    # question, from another cell) had succeeded meanwhile.
    db = sqlite3.connect(run.path / "ledger.sqlite")
    try:
        (retried,) = db.execute(
            "SELECT count(*) FROM requests WHERE kind = 'judge' AND attempts > 1"
        ).fetchone()
    finally:
        db.close()
    assert retried > 0, "some judge requests needed a retry"
    fired = judged.emu.fault_state.fired
    assert set(fired) == {"errored", "http_529", "drop_results"}, fired


def test_a_rerun_reuses_cached_judge_verdicts(judged: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    first = batchmark.run(config, results=tmp_path / "results")
    sent = len(judged.submitted())

    second = batchmark.run(config, results=tmp_path / "results")

    assert len(judged.submitted()) == sent
    assert list(second.score_summary()) == list(first.score_summary())


def test_score_command_rescores_without_regenerating(judged: LiveEmulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    run = batchmark.run(config, results=tmp_path / "results")
    sent = len(judged.submitted())

    edited = write_config(
        tmp_path / "cfg2", scorers=[{"exact_match": {"target": "It is {{ answer }}."}}, JUDGE]
    )
    batchmark.score(run.id, results=tmp_path / "results", config=edited)

    assert len(judged.submitted()) == sent
    exact = [s for s in run.scores() if s["scorer"] == "exact_match"]
    assert len(exact) == N_CELLS
    assert sum(s["passed"] for s in exact) == 3 * 4


def test_human_labels_give_judge_agreement(judged: LiveEmulator, tmp_path: Path) -> None:
    rows = [{**r, "human": "A" if int(r["id"][1:]) <= 2 else "C"} for r in ROWS]
    judge = {"judge": {**JUDGE["judge"], "human_label_field": "human"}}
    config = write_config(tmp_path / "cfg", rows=rows, scorers=[judge])
    run = batchmark.run(config, results=tmp_path / "results")

    agreement = run.judge_agreement()["grader"]
    # The judge says A for q1-q3, the humans for q1-q2: 5 of 6 rows agree, in every cell.
    assert agreement["n"] == N_CELLS
    assert agreement["accuracy"] == pytest.approx(5 / 6)
    # kappa from the 2x2 table per 6 rows: po = 5/6, pe = (3*2 + 3*4) / 36 = 1/2
    assert agreement["kappa"] == pytest.approx((5 / 6 - 1 / 2) / (1 - 1 / 2))


def test_a_scorer_reading_a_missing_column_is_refused_before_sending(
    judged: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", scorers=[{"exact_match": {"target": "{{ label }}"}}])
    with pytest.raises(batchmark.ConfigError, match="label"):
        batchmark.run(config, results=tmp_path / "results")
    assert judged.submitted() == []


def test_kill_while_the_judge_batch_is_in_flight_then_resume(
    judged: LiveEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", scorers=SCORERS)
    results = tmp_path / "results"
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": judged.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "BATCHMARK_CRASHPOINT": "after_create@2",  # the second create: the judge batch
    }
    cmd = [sys.executable, "-m", "batchmark", "run", str(config), "--results", str(results), "-q"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    [folder] = [p for p in results.glob("arith/*") if not p.name.startswith(".")]
    # died with the candidates collected and the judge batch made but not recorded
    killed = batchmark.open_run(folder)
    assert killed.status.done == N_CELLS  # candidates
    [candidates] = killed.batches()
    assert candidates["collected"] and candidates["n_requests"] == N_CELLS
    db = sqlite3.connect(folder / "ledger.sqlite")
    try:
        intents = db.execute("SELECT status, n_requests FROM intents ORDER BY id").fetchall()
        judges = db.execute("SELECT DISTINCT state FROM requests WHERE kind = 'judge'").fetchall()
    finally:
        db.close()
    assert intents == [("created", N_CELLS), ("sending", N_CELLS)]
    assert judges == [("submitting",)]
    assert len(judged.batch_list()) == 2

    run = batchmark.resume(folder, results=results, poll_interval=0.02)

    assert max(Counter(judged.submitted()).values()) == 1
    assert len(_judge_ids(run)) == N_CELLS
    assert not any(s["invalid"] for s in run.scores())


def test_a_panel_combines_several_judges_on_each_item(judged: LiveEmulator, tmp_path: Path) -> None:
    second = {"judge": {**JUDGE["judge"], "name": "second", "model": "claude-sonnet-4-6"}}
    panel = {"judge_panel": {"name": "panel", "judges": ["grader", "second"], "combine": "mean"}}
    config = write_config(tmp_path / "cfg", scorers=[JUDGE, second, panel])
    run = batchmark.run(config, results=tmp_path / "results")

    by_scorer = Counter(s["scorer"] for s in run.scores())
    assert by_scorer == {"grader": N_CELLS, "second": N_CELLS, "panel": N_CELLS}
    assert sum(c.startswith("j-") for c in judged.submitted()) == 2 * N_CELLS
    for s in run.scores():
        if s["scorer"] == "panel":
            assert s["score"] == (1.0 if int(s["row_id"][1:]) <= 3 else 0.0)
