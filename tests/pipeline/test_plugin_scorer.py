"""A plugin's own batched scorer, installed through the ``batchmark.scorers`` entry point
group, runs end to end as a second batch.

The plugin is a real distribution: a module and its ``*.dist-info`` (METADATA and
entry_points.txt) in a folder put on ``PYTHONPATH``, found by ``importlib.metadata`` in
a ``batchmark run --emulate`` subprocess. Its scorer is not a judge: it subclasses
``BatchedScorer`` only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import batchmark
from batchmark.runs._keys import judge_custom_id
from batchmark.runs._ledger import Ledger
from batchmark.runs._responses import final_responses

PLUGIN = '''"""A batchmark plugin: a batched scorer of its own."""

from batchmark.scorers import BatchedScorer, Score


class SecondOpinion(BatchedScorer):
    """Asks a model whether the response says the row's answer."""

    type_name = "second_opinion"
    model: str = "claude-haiku-4-5"
    """The model asked."""
    field: str = "answer"
    """The row field holding what the response must say."""

    def build_request(self, ctx):
        question = f"Does it say {ctx.row[self.field]}? {ctx.text}"
        return {
            "model": self.model,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": question}],
        }

    def parse(self, ctx, answer):
        said = answer["text"].partition("? ")[2]
        ok = str(ctx.row[self.field]) in said
        return Score(float(ok), ok, f"the second opinion read {said!r}", answer=said)
'''

ENTRY_POINTS = """\
[batchmark.scorers]
second_opinion = batchmark_second_opinion:SecondOpinion
"""

METADATA = """\
Metadata-Version: 2.1
Name: batchmark-second-opinion
Version: 1.0
"""

# The emulator echoes: a candidate answers its own question, so only r1 and r3 say it.
ROWS = [
    {"id": "r1", "q": "The answer is 4", "answer": "4"},
    {"id": "r2", "q": "No idea", "answer": "5"},
    {"id": "r3", "q": "It is 7 for sure", "answer": "7"},
]


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding the installed plugin, as a site-packages would."""
    site = tmp_path / "site"
    info = site / "batchmark_second_opinion-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(METADATA)
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "batchmark_second_opinion.py").write_text(PLUGIN)
    return site


def write_config(folder: Path) -> Path:
    folder.mkdir()
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = {
        "name": "opinions",
        "dataset": {"path": "d.jsonl", "id_field": "id"},
        "prompts": [{"name": "p", "user": "{{ q }}"}],
        "models": ["claude-haiku-4-5"],
        "params": {"max_tokens": 32},
        "scorers": [
            {"second_opinion": {"field": "answer"}},
            {"judge_panel": {"judges": ["second_opinion"]}, "name": "panel"},
        ],
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_plugin_batched_scorer_runs_as_a_second_batch(plugin_path: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg")
    results = tmp_path / "results"
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "batchmark", "run", str(config), "--emulate"]
        + ["--results", str(results), "--poll-interval", "0.02"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [folder] = results.glob("opinions/*")
    run = batchmark.open_run(folder)

    # the second batch: one request per candidate, with the plugin's ids and params
    ledger = Ledger(run.folder.ledger_path, readonly=True)
    try:
        asked = list(final_responses(ledger, kind="judge", scorer="second_opinion"))
    finally:
        ledger.close()
    candidates = {r["row_id"]: r["custom_id"] for r in run.requests()}
    assert {r["custom_id"] for r in asked} == {
        judge_custom_id(cid, "second_opinion") for cid in candidates.values()
    }
    assert {r["status"] for r in asked} == {"succeeded"}
    assert sorted(r["text"] for r in asked) == sorted(
        f"Does it say {r['answer']}? {r['q']}" for r in ROWS
    )

    # its scores (and the panel's over it) land in the results, with their spec hashes
    scores = {(s["scorer"], s["row_id"]): s for s in run.scores()}
    for row in ROWS:
        mine = scores["second_opinion", row["id"]]
        assert mine["passed"] is (row["answer"] in row["q"])
        assert mine["explanation"] == f"the second opinion read {row['q']!r}"
        assert scores["panel", row["id"]]["passed"] is mine["passed"]
    hashes = {s["scorer"]: s["spec_hash"] for s in run.scores()}
    assert len(hashes["second_opinion"]) == 16 and hashes["panel"] != hashes["second_opinion"]
    stored = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
    assert [s["scorer"] for s in stored].count("second_opinion") == len(ROWS)
    assert "second_opinion" in done.stdout  # the run's summary table shows its column
