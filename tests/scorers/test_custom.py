"""Custom scorers: python: functions and classes, register_scorer, entry points."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchmark import ConfigError
from batchmark.scorers import (
    FunctionScorer,
    Score,
    ScoreContext,
    ScorerOptions,
    build_scorers,
    register_scorer,
    registered_scorers,
)
from batchmark.scorers._custom import to_score
from tests.scorers.support import ctx

MODULE = """
from batchmark.scorers import Score


def brevity(ctx, max_words=5):
    words = len(ctx.text.split())
    return Score(1.0 if words <= max_words else 0.0, words <= max_words, f"{words} words")


def is_polite(ctx):
    return "please" in ctx.text.lower()


def length(ctx):
    return len(ctx.text) / 100


def as_dict(ctx):
    return {"score": 0.25, "passed": False, "explanation": "meh", "answer": ctx.text}


def broken(ctx):
    raise KeyError("oops")


def nothing(ctx):
    return None


class Shouty:
    def __init__(self, name="shouty", ratio=0.5):
        self.name = name
        self.ratio = ratio

    def score(self, ctx):
        upper = sum(c.isupper() for c in ctx.text) / max(len(ctx.text), 1)
        return Score(upper, upper >= self.ratio)
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "my_scorers_for_tests"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    return name


def build(items: list[object], base_dir: Path = Path(".")) -> list[object]:
    """Build trusting the code: ``plugin_module`` is outside any config's repository (the
    policy on where ``python:`` code may come from is tested in test_config_safety.py)."""
    return build_scorers(items, base_dir=base_dir, allow_external_code=True)  # type: ignore[return-value]


def test_python_function_with_options(plugin_module: str) -> None:
    [scorer] = build([{"python": f"{plugin_module}:brevity", "max_words": 2}])
    assert isinstance(scorer, FunctionScorer) and scorer.name == "brevity"
    assert scorer.score(ctx("two words")) == Score(1.0, True, "2 words")
    assert scorer.score(ctx("three words here")).passed is False
    assert scorer.to_config() == {
        "python": f"{plugin_module}:brevity",
        "name": "brevity",
        "max_words": 2,
    }


@pytest.mark.parametrize(
    ("function", "text", "expected"),
    [
        ("is_polite", "Please sit", Score(1.0, True)),
        ("is_polite", "Sit", Score(0.0, False)),
        ("length", "x" * 50, Score(0.5, None)),
        ("as_dict", "hm", Score(0.25, False, "meh", answer="hm")),
    ],
)
def test_results_are_normalized_to_scores(
    plugin_module: str, function: str, text: str, expected: Score
) -> None:
    [scorer] = build([{"python": f"{plugin_module}:{function}"}])
    assert scorer.score(ctx(text)) == expected  # type: ignore[attr-defined]


def test_a_raising_scorer_gives_invalid_not_a_crash(plugin_module: str) -> None:
    [scorer] = build([{"python": f"{plugin_module}:broken", "name": "b"}])
    result = scorer.score(ctx("x"))  # type: ignore[attr-defined]
    assert result.invalid and result.explanation == "scorer raised KeyError: 'oops'"


def test_a_scorer_returning_none_is_invalid(plugin_module: str) -> None:
    [scorer] = build([{"python": f"{plugin_module}:nothing"}])
    assert scorer.score(ctx("x")).invalid  # type: ignore[attr-defined]


def test_custom_scorers_are_not_called_without_a_response(plugin_module: str) -> None:
    [scorer] = build([{"python": f"{plugin_module}:broken"}])
    result = scorer.score(ctx(None, status="expired"))  # type: ignore[attr-defined]
    assert (result.value, result.passed) == (0.0, False)


def test_python_class_with_options(plugin_module: str) -> None:
    [scorer] = build([{"python": f"{plugin_module}:Shouty", "ratio": 0.9, "name": "loud"}])
    assert scorer.name == "loud"  # type: ignore[attr-defined]
    assert scorer.score(ctx("HEY")).passed  # type: ignore[attr-defined]


def test_python_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "scoring.py").write_text(MODULE)
    [scorer] = build([{"python": "evals/scoring.py:is_polite"}], base_dir=tmp_path)
    assert scorer.score(ctx("please")).passed  # type: ignore[attr-defined]


def test_python_errors_at_build_time(plugin_module: str, tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise RuntimeError('at import')\n")
    items = [
        {"python": "no_such_module_xyz:f"},
        {"python": f"{plugin_module}:missing", "name": "a"},
        {"python": f"{plugin_module}:brevity", "max_wrds": 3, "name": "b"},
        {"python": "no colon here", "name": "c"},
        {"python": "bad.py:f", "name": "d"},
        {"python": "absent.py:f", "name": "e"},
        {"python": 12, "name": "f"},
    ]
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=tmp_path)
    errors = info.value.errors
    heads = [e.split(":")[0] for e in errors]
    assert heads == [f"scorers[{i}]" + ("" if i == 2 else ".python") for i in range(7)]
    assert "cannot import 'no_such_module_xyz'" in errors[0]
    assert "has no attribute 'missing'" in errors[1]
    assert "max_wrds" in errors[2]
    assert "RuntimeError: at import" in errors[4]
    assert "file not found" in errors[5]


def test_to_score_rejects_nonsense() -> None:
    assert to_score(float("nan")).invalid
    assert to_score("yes").invalid
    assert to_score({"value": "high"}).invalid
    assert to_score({"bogus": 1}).invalid
    assert to_score({"passed": True}) == Score(1.0, True)
    assert to_score({"value": True}) == Score(1.0, True)
    assert to_score({"invalid": True, "explanation": "why"}) == Score.of_invalid("why")


def test_register_a_function() -> None:
    @register_scorer("shorter_than")
    def shorter_than(ctx: ScoreContext, limit: int = 10) -> bool:
        return len(ctx.text) < limit

    [scorer] = build([{"shorter_than": {"limit": 3}}])
    assert scorer.name == "shorter_than"  # type: ignore[attr-defined]
    assert scorer.score(ctx("ab")).passed  # type: ignore[attr-defined]
    assert not scorer.score(ctx("abcd")).passed  # type: ignore[attr-defined]


def test_register_a_dataclass() -> None:
    @dataclass
    class Equals:
        value: str
        name: str = "equals"

        def score(self, ctx: ScoreContext) -> Score:
            return Score.success() if ctx.text == self.value else Score.failure("differs")

    register_scorer("equals", Equals)
    [scorer] = build([{"equals": {"value": "hi"}}])
    assert scorer.score(ctx("hi")).passed  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"scorers\[0\]: Equals: .*unexpected keyword"):
        build([{"equals": {"valeu": "hi"}}])


def test_register_an_options_model_gets_precise_errors() -> None:
    class StartsWith(ScorerOptions):
        type_name = "starts_with"
        prefix: str

        def score(self, ctx: ScoreContext) -> Score:
            return Score.success() if ctx.text.startswith(self.prefix) else Score.failure("no")

    register_scorer("starts_with", StartsWith)
    [scorer] = build([{"starts_with": {"prefix": "Dear"}}])
    assert scorer.name == "starts_with"  # type: ignore[attr-defined]
    assert scorer.to_config() == {"starts_with": {"prefix": "Dear"}}  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"scorers\[0\]\.prefx: unknown option"):
        build([{"starts_with": {"prefx": "Dear"}}])


def test_register_refuses_a_taken_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_scorer("exact_match", lambda ctx: True)
    with pytest.raises(ValueError, match="invalid scorer type name"):
        register_scorer("python", lambda ctx: True)


def test_builtins_are_in_the_registry() -> None:
    assert {"exact_match", "includes", "regex", "numeric", "choice", "json_schema", "judge"} <= set(
        registered_scorers()
    )


def test_entry_point_plugins_load_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bm_plugin_xyz.py").write_text(
        textwrap.dedent(
            """
            LOADED = True

            def word_count(ctx, words=2):
                return len(ctx.text.split()) == words
            """
        )
    )
    info = tmp_path / "bm_plugin_xyz-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bm-plugin-xyz\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[batchmark.scorers]\nword_count = bm_plugin_xyz:word_count\nbroken = bm_plugin_xyz:nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "bm_plugin_xyz", raising=False)

    assert "word_count" not in registered_scorers()
    build([{"exact_match": {"target": "x"}}])
    assert "bm_plugin_xyz" not in __import__("sys").modules  # not loaded when not named

    [scorer] = build([{"word_count": {"words": 3}}])
    assert scorer.score(ctx("one two three")).passed  # type: ignore[attr-defined]
    assert "word_count" in registered_scorers()

    with pytest.raises(ConfigError, match=r"scorers\[0\]: scorer 'broken': entry point"):
        build(["broken"])
    with pytest.raises(ConfigError, match="did you mean `word_count`"):
        build(["word_cuont"])
