"""build_scorers: the config forms, eager validation, every error at once, round trips."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import batchmark.scorers
from batchmark import ConfigError
from batchmark.scorers import ExactMatch, build_scorers, scorers_json_schema
from tests.scorers.support import ctx

HERE = Path(".")


def errors_of(items: Any, base_dir: Path = HERE) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=base_dir, file="configs/eval.yaml")
    assert info.value.file == "configs/eval.yaml"
    return info.value.errors


def test_facade_exports_exactly_its_public_names() -> None:
    public = [
        n
        for n, v in vars(batchmark.scorers).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    ]
    assert sorted(batchmark.scorers.__all__) == sorted(public)
    assert batchmark.scorers.__all__ == sorted(batchmark.scorers.__all__, key=str.casefold)


def test_every_item_form() -> None:
    scorers = build_scorers(
        [
            {"exact_match": {"target": "{{ a }}"}},
            {"exact_match": {"target": "{{ a }}", "name": "second"}},
            {"exact_match": {"target": "{{ a }}"}, "name": "third"},
            {"type": "exact_match", "name": "fourth", "target": "{{ a }}"},
            {"json_schema": {"schema": True}},
        ],
        base_dir=HERE,
    )
    assert [s.name for s in scorers] == ["exact_match", "second", "third", "fourth", "json_schema"]
    assert all(s.score(ctx("1", {"a": 1})).passed for s in scorers)


def test_no_scorers() -> None:
    assert build_scorers(None, base_dir=HERE) == []
    assert build_scorers([], base_dir=HERE) == []


def test_a_bare_name_needs_its_required_options() -> None:
    assert errors_of(["exact_match"]) == ["scorers[0].target: required option is missing"]


def test_unknown_scorer_suggests_the_closest() -> None:
    assert errors_of([{"exact_mach": {"target": "x"}}]) == [
        "scorers[0]: unknown scorer 'exact_mach'\n    hint: did you mean `exact_match`?"
    ]
    assert errors_of([{"type": "jsonschema"}])[0].startswith(
        "scorers[0].type: unknown scorer 'jsonschema'\n    hint: did you mean `json_schema`?"
    )


def test_unknown_option_suggests_the_closest() -> None:
    assert errors_of([{"exact_match": {"target": "x", "normalise": True}}]) == [
        "scorers[0].normalise: unknown option\n    hint: did you mean `normalize`?"
    ]


def test_bad_option_types() -> None:
    errors = errors_of(
        [
            {"numeric": {"target": "x", "abs_tol": "big"}},
            {"numeric": {"target": "x", "rel_tol": -1}, "name": "n2"},
            {"exact_match": {"target": "x", "normalize": ["lower", "upper"]}},
            {"regex": {"pattern": "(unclosed"}},
            {"regex": {"pattern": "(a)", "group": 3}, "name": "r2"},
            {"exact_match": {"target": "{{ x "}, "name": "e2"},
            {"includes": {"target": ["ok", "{% if %}"]}},
        ]
    )
    assert errors[0].startswith("scorers[0].abs_tol: Input should be a valid number")
    assert errors[1].startswith("scorers[1].rel_tol: Input should be greater than or equal to 0")
    assert errors[2].startswith("scorers[2].normalize")
    assert errors[-4].startswith("scorers[3].pattern: invalid regular expression")
    assert errors[-3] == "scorers[4].group: the pattern has 1 group(s), not 3"
    assert errors[-2].startswith("scorers[5].target: template syntax error")
    assert errors[-1].startswith("scorers[6].target[1]: template syntax error")


def test_duplicate_names() -> None:
    errors = errors_of([{"exact_match": {"target": "a"}}, {"exact_match": {"target": "b"}}])
    assert errors == [
        "scorers[1].name: duplicate scorer name 'exact_match' (also scorers[0])\n"
        "    hint: set `name:` to tell them apart"
    ]


def test_every_problem_at_once_in_item_order(tmp_path: Path) -> None:
    errors = errors_of(
        [
            {"exact_match": {"target": "a"}},
            {"exact_mach": {}},
            {"numeric": {"target": "x", "abs_tol": "big"}},
            {"exact_match": {"target": "b"}},
            {"judge": {"model": "m", "rubric_file": "nope.j2"}},
            42,
            {"exact_match": {}, "includes": {}},
            {"python": "no_such_module_xyz:f"},
            {"exact_match": {"target": "c"}, "name": "bad name!"},
        ],
        base_dir=tmp_path,
    )
    heads = [e.split(":")[0] for e in errors]
    assert heads == [
        "scorers[1]",
        "scorers[2].abs_tol",
        "scorers[3].name",
        "scorers[4].rubric_file",
        "scorers[5]",
        "scorers[6]",
        "scorers[7].python",
        "scorers[8].name",
    ]


def test_scorers_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match="scorers: expected a list of scorers, got dict"):
        build_scorers({"exact_match": {}}, base_dir=HERE)


def test_options_must_be_a_mapping() -> None:
    assert errors_of([{"exact_match": "{{ label }}"}]) == [
        "scorers[0].exact_match: options must be a mapping, got '{{ label }}'"
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"exact_match": {"target": "{{ label }}", "normalize": True, "extract": "A: (.*)"}},
        {"includes": {"target": ["a", "b"], "mode": "all", "name": "has_both"}},
        {"regex": {"pattern": "(?i)id-(\\d+)", "target": "{{ id }}", "group": 1}},
        {"numeric": {"target": "{{ n }}", "abs_tol": 0.5, "pick": "only", "percent": "fraction"}},
        {"choice": {"target": "{{ answer }}", "choices": ["A", "B", "C", "D", "E"]}},
        {"json_schema": {"schema": {"type": "object"}, "extract": "fenced"}},
        {
            "judge": {
                "model": "m",
                "rubric": "{{ response }}",
                "range": [1.0, 5.0],
                "params": {"max_tokens": 300},
            }
        },
    ],
)
def test_configs_round_trip(item: dict[str, Any]) -> None:
    [scorer] = build_scorers([item], base_dir=HERE)
    config = scorer.to_config()  # type: ignore[attr-defined]
    [again] = build_scorers([config], base_dir=HERE)
    assert again == scorer
    assert again.to_config() == config  # type: ignore[attr-defined]


def test_scorers_are_frozen() -> None:
    [scorer] = build_scorers([{"exact_match": {"target": "x"}}], base_dir=HERE)
    assert isinstance(scorer, ExactMatch)
    with pytest.raises(ValueError, match="frozen"):
        scorer.target = "y"  # type: ignore[misc]


def test_json_schema_of_the_scorers_list() -> None:
    schema = scorers_json_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    good = [
        "exact_match",
        {"exact_match": {"target": "{{ x }}", "normalize": ["lower"]}},
        {"judge": {"model": "m", "rubric": "{{ response }}", "grades": {"A": 1, "B": 0}}},
        {"python": "pkg.mod:fn", "name": "mine", "limit": 3},
    ]
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors([{"exact_match": {"target": 1, "bogus": 2}}]))


def test_row_variables_name_the_fields_templates_read() -> None:
    scorers = build_scorers(
        [
            {"exact_match": {"target": ["{{ label }}", "{{ alias | lower }}"]}},
            {"numeric": {"target": "{{ row['the answer'] }} {{ row_id }}"}},
            {"regex": {"pattern": "x"}},
            {"judge": {"model": "m", "rubric": "{{ question }}: {{ response }}"}},
        ],
        base_dir=HERE,
    )
    assert [s.row_variables for s in scorers] == [  # type: ignore[attr-defined]
        {"label", "alias"},
        set(),
        set(),
        {"question"},
    ]


def test_targets_can_read_row_and_row_id() -> None:
    [scorer] = build_scorers(
        [{"exact_match": {"target": "{{ row['a b'] }}-{{ row_id }}"}}], base_dir=HERE
    )
    assert scorer.score(ctx("x-row-1", {"a b": "x"})).passed
