"""Scorer kinds: each scorer is plain, batched or combining; a ScorerSet sorts them once
and gives each its spec hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchmark import ConfigError
from batchmark.scorers import (
    BatchedScorer,
    CombiningScorer,
    Score,
    ScoreContext,
    ScorerKind,
    ScorerSet,
    build_scorers,
    kind_of,
    register_scorer,
)
from tests.scorers.support import ctx

HERE = Path(".")


def judge(name: str, rubric: str = "{{ response }}") -> dict[str, Any]:
    return {"judge": {"name": name, "model": "m", "rubric": rubric}}


class Echoed(BatchedScorer):
    """A batched scorer of its own: asks a model to repeat the response."""

    type_name = "echoed"
    model: str = "claude-haiku-4-5"

    def build_request(self, ctx: ScoreContext) -> dict[str, Any] | None:
        return {
            "model": self.model,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": ctx.text}],
        }

    def parse(self, ctx: ScoreContext, answer: Mapping[str, Any]) -> Score:
        return Score.success() if answer.get("text") == ctx.text else Score.failure("differs")


class BestOf(CombiningScorer):
    """A combining scorer of its own: the best of the scores it names."""

    type_name = "best_of"
    of: list[str]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.of)

    def combine(self, scores: Mapping[str, Score], ctx: ScoreContext | None = None) -> Score:
        best = max((s.value or 0.0 for s in scores.values()), default=0.0)
        return Score(best, best >= 0.5)


@pytest.fixture(autouse=True)
def _own_kinds() -> None:
    register_scorer("echoed", Echoed)
    register_scorer("best_of", BestOf)


def test_each_scorer_has_its_kind() -> None:
    exact, grader, panel, echoed, best, brevity = build_scorers(
        [
            {"exact_match": {"target": "x"}},
            judge("grader"),
            {"judge_panel": {"judges": ["grader", "echoed"]}},
            "echoed",
            {"best_of": {"of": ["exact_match", "judge_panel"]}},
            {"python": "tests.scorers.test_kinds:brevity"},
        ],
        base_dir=HERE,
        allow_external_code=True,
    )
    kinds = [kind_of(s) for s in (exact, grader, panel, echoed, best, brevity)]
    P, B, C = ScorerKind.PLAIN, ScorerKind.BATCHED, ScorerKind.COMBINING
    assert kinds == [P, B, C, B, C, P]


def brevity(ctx: ScoreContext) -> bool:
    return len(ctx.text) < 10


def test_the_set_reads_as_written_and_runs_plain_then_batched_then_combining() -> None:
    scorers = build_scorers(
        [
            {"best_of": {"of": ["judge_panel", "exact_match"]}},
            judge("grader"),
            {"judge_panel": {"judges": ["grader", "echoed"]}},
            {"exact_match": {"target": "x"}},
            "echoed",
        ],
        base_dir=HERE,
    )
    assert [s.name for s in scorers] == [
        "best_of",
        "grader",
        "judge_panel",
        "exact_match",
        "echoed",
    ]
    assert [s.name for s in scorers.plain] == ["exact_match"]
    assert [s.name for s in scorers.batched] == ["grader", "echoed"]
    # best_of is written first but depends on the panel: it runs after it
    assert [s.name for s in scorers.combining] == ["judge_panel", "best_of"]
    assert [s.name for s in scorers.run_order] == [
        "exact_match",
        "grader",
        "echoed",
        "judge_panel",
        "best_of",
    ]


def test_a_set_equals_the_list_of_its_scorers() -> None:
    scorers = build_scorers([{"exact_match": {"target": "x"}}], base_dir=HERE)
    assert scorers == [scorers[0]] and scorers == list(scorers)
    assert build_scorers([], base_dir=HERE) == [] and build_scorers(None, base_dir=HERE) == []


def test_select_adds_what_the_named_scorers_depend_on() -> None:
    scorers = build_scorers(
        [
            judge("a"),
            judge("b"),
            {"exact_match": {"target": "x"}},
            {"judge_panel": {"judges": ["a", "b"]}},
        ],
        base_dir=HERE,
    )
    assert [s.name for s in scorers.select(["judge_panel"])] == ["a", "b", "judge_panel"]
    assert [s.name for s in scorers.select(["exact_match"])] == ["exact_match"]
    assert scorers.select(None) is scorers
    assert scorers.select(["a"]).spec_hash("a") == scorers.spec_hash("a")


def test_combining_scorers_that_depend_on_each_other_are_a_config_error() -> None:
    items = [
        {"best_of": {"of": ["second"]}, "name": "first"},
        {"best_of": {"of": ["first"]}, "name": "second"},
        {"best_of": {"of": ["alone"]}, "name": "alone"},
    ]
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=HERE)
    [error] = info.value.errors
    assert error.startswith("scorers[0]: a dependency cycle: first -> second -> first")


def test_a_scorer_that_depends_on_itself_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        build_scorers([{"best_of": {"of": ["alone"]}, "name": "alone"}], base_dir=HERE)
    assert info.value.errors[0].startswith("scorers[0]: a dependency cycle: alone -> alone")


def test_a_combining_scorer_names_scorers_of_the_same_list() -> None:
    with pytest.raises(ConfigError) as info:
        build_scorers(
            [{"exact_match": {"target": "x"}}, {"best_of": {"of": ["exact"]}}], base_dir=HERE
        )
    assert info.value.errors == [
        "scorers[1]: no scorer named 'exact' in this list\n    hint: did you mean `exact_match`?"
    ]


def test_a_panel_takes_any_batched_scorer_as_a_judge() -> None:
    scorers = build_scorers(["echoed", {"judge_panel": {"judges": ["echoed"]}}], base_dir=HERE)
    assert [s.name for s in scorers.combining] == ["judge_panel"]


def test_a_batched_scorer_without_an_answer_fails_or_is_invalid() -> None:
    [echoed] = build_scorers(["echoed"], base_dir=HERE)
    assert echoed.score(ctx("x", status="errored")).passed is False
    assert echoed.score(ctx("x")).invalid


# --------------------------------------------------------------------------- spec hashes


def hash_of(item: Any, base_dir: Path = HERE) -> str | None:
    [scorer] = scorers = build_scorers([item], base_dir=base_dir)
    return scorers.spec_hash(scorer.name)


def test_the_spec_hash_is_the_sha256_of_the_normalised_item_and_its_files(tmp_path: Path) -> None:
    (tmp_path / "rubric.j2").write_text("Grade {{ response }}")
    item = {"judge": {"model": "m", "rubric_file": "rubric.j2", "grades": {"Y": 1, "N": 0}}}
    spec = {"judge": {"model": "m", "rubric_file": "rubric.j2", "grades": {"Y": 1.0, "N": 0.0}}}
    files = [hashlib.sha256(b"Grade {{ response }}").hexdigest()]
    blob = orjson.dumps({"spec": spec, "files": files}, option=orjson.OPT_SORT_KEYS)
    assert hash_of(item, tmp_path) == hashlib.sha256(blob).hexdigest()[:16]


def test_the_same_scorer_hashes_alike_however_it_is_written() -> None:
    forms = [
        {"exact_match": {"target": "x"}},
        {"exact_match": {"target": "x", "normalize": ["strip"]}},  # the default
        {"type": "exact_match", "target": "x"},
        {"exact_match": {"target": "x", "name": "exact_match"}},
    ]
    assert len({hash_of(item) for item in forms}) == 1


def test_an_option_or_the_name_changes_the_hash() -> None:
    base = hash_of({"exact_match": {"target": "x"}})
    assert hash_of({"exact_match": {"target": "y"}}) != base
    assert hash_of({"exact_match": {"target": "x", "normalize": True}}) != base
    assert hash_of({"exact_match": {"target": "x"}, "name": "other"}) != base


def test_editing_a_file_the_scorer_names_changes_the_hash(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.j2"
    rubric.write_text("Grade {{ response }}")
    item = {"judge": {"model": "m", "rubric_file": "rubric.j2"}}
    before = hash_of(item, tmp_path)
    rubric.write_text("Grade strictly: {{ response }}")
    assert hash_of(item, tmp_path) != before


def test_other_scorers_and_their_order_leave_a_hash_alone() -> None:
    exact = {"exact_match": {"target": "x"}}
    alone = build_scorers([exact], base_dir=HERE)
    among = build_scorers([judge("g"), {"includes": {"target": "y"}}, exact], base_dir=HERE)
    assert among.spec_hash("exact_match") == alone.spec_hash("exact_match")


def test_function_scorers_hash_their_options() -> None:
    item = {"python": "tests.scorers.test_kinds:brevity"}
    first = build_scorers([item], base_dir=HERE, allow_external_code=True)
    again = build_scorers([item], base_dir=HERE, allow_external_code=True)
    assert first.spec_hash("brevity") == again.spec_hash("brevity") is not None


def test_a_set_made_by_hand_has_no_hashes() -> None:
    [exact] = build_scorers([{"exact_match": {"target": "x"}}], base_dir=HERE)
    assert ScorerSet([exact]).spec_hash("exact_match") is None


def weighted(ctx: ScoreContext, weights: Mapping[Any, float], tags: Any = ()) -> float:
    """A function scorer with options YAML can write as no JSON can: ``{1: 0.5}``, a set."""
    return weights.get(len(ctx.text), 0.0)


def test_options_keyed_by_numbers_hash_instead_of_failing_the_config() -> None:
    item = {"python": "tests.scorers.test_kinds:weighted", "weights": {1: 0.5, 2: 1.0}}
    first = build_scorers([item], base_dir=HERE, allow_external_code=True)
    again = build_scorers([item], base_dir=HERE, allow_external_code=True)
    other = {**item, "weights": {1: 0.5, 2: 0.0}}
    changed = build_scorers([other], base_dir=HERE, allow_external_code=True)
    assert first.spec_hash("weighted") == again.spec_hash("weighted") is not None
    assert changed.spec_hash("weighted") != first.spec_hash("weighted")


_HASH_OF_A_SET = """
from pathlib import Path
from batchmark.scorers import build_scorers
item = {"python": "tests.scorers.test_kinds:weighted", "weights": {},
        "tags": {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}}  # YAML's !!set
print(build_scorers([item], base_dir=Path("."), allow_external_code=True).spec_hash("weighted"))
"""


def test_a_set_among_the_options_hashes_alike_in_every_process() -> None:
    """String hashing is salted per process (PYTHONHASHSEED): a set's order is not a
    config's, and the report would take one scorer config for two."""
    root = Path(__file__).resolve().parents[2]
    hashes = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", _HASH_OF_A_SET],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        hashes.add(done.stdout.strip())
    assert len(hashes) == 1
