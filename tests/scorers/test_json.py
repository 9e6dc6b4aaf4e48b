"""json_schema: extraction from every place JSON hides, validation, hostile inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchmark import ConfigError
from batchmark.scorers import build_scorers
from batchmark.scorers._json import extract_json, first_balanced_object
from tests.scorers.support import ctx, one, score

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}
ITEM = {"json_schema": {"schema": SCHEMA}}


def test_valid_json_passes_and_is_the_answer() -> None:
    result = score(ITEM, '{"name": "Ada", "age": 36}', {})
    assert result.passed and result.answer == {"name": "Ada", "age": 36}
    assert result.explanation == "valid (text)"


def test_schema_error_names_the_json_path() -> None:
    result = score(ITEM, '{"name": "Ada", "age": -1}', {})
    assert (result.value, result.passed) == (0.0, False)
    assert result.explanation == "$.age: -1 is less than the minimum of 0"


def test_nested_error_path() -> None:
    schema = {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}}}
    result = score({"json_schema": {"schema": schema}}, '[{"x": 1}, {"x": "no"}]', {})
    assert result.explanation == "$[1].x: 'no' is not of type 'number'"


def test_several_errors_are_counted() -> None:
    result = score(ITEM, '{"age": "x"}', {})
    assert not result.passed and "(+1 more)" in result.explanation


def test_fenced_json_block() -> None:
    text = 'Here you go:\n```json\n{"name": "Ada", "age": 36}\n```\nAnything else?'
    result = score(ITEM, text, {})
    assert result.passed and result.explanation == "valid (fenced block)"


def test_untagged_fence_and_unclosed_fence() -> None:
    assert score(ITEM, '```\n{"name": "A", "age": 1}\n```', {}).passed
    assert score(ITEM, '```json\n{"name": "A", "age": 1}\n', {}).passed


def test_first_balanced_object_with_braces_inside_strings() -> None:
    text = 'Sure! {"name": "a } tricky {\\" name", "age": 3} and {"other": 1}'
    result = score(ITEM, text, {})
    assert result.passed and result.answer["name"] == 'a } tricky {" name'


def test_first_balanced_object_skips_non_json_braces() -> None:
    assert first_balanced_object('f(x) = {x | x > 0}; {"a": 1}') == '{"a": 1}'
    assert first_balanced_object('{ {"a": 1}') == '{"a": 1}'


def test_tool_use_input() -> None:
    calls = [{"id": "t1", "name": "record", "input": {"name": "Ada", "age": 36}}]
    result = one(ITEM).score(ctx("", tool_calls=calls))
    assert result.passed and result.explanation == "valid (tool_use 'record')"


def test_tool_use_filtered_by_name() -> None:
    calls = [{"id": "t1", "name": "other", "input": {}}]
    item = {"json_schema": {"schema": SCHEMA, "extract": "tool_use", "tool": "record"}}
    result = one(item).score(ctx('{"name": "A", "age": 1}', tool_calls=calls))
    assert (
        not result.passed
        and result.explanation == "no tool_use call named 'record' in the response"
    )


def test_not_json_at_all() -> None:
    result = score(ITEM, "I'd rather not.", {})
    assert not result.passed and not result.invalid
    assert result.explanation.startswith("no JSON found")


def test_invalid_json_reports_the_parse_error() -> None:
    result = score(ITEM, '{"name": "Ada", "age": 36,}', {})
    assert not result.passed
    assert result.explanation.startswith("invalid JSON: ")
    assert "line 1" in result.explanation


def test_empty_response() -> None:
    assert score(ITEM, "", {}).explanation == "empty response"
    assert score(ITEM, None, {}).explanation == "empty response"


def test_nan_is_not_json() -> None:
    result = score({"json_schema": {"schema": {}}}, '{"x": NaN}', {})
    assert not result.passed and "NaN" in result.explanation


@pytest.mark.parametrize("depth", [500, 10_000, 200_000])
def test_deeply_nested_json_fails_without_crashing(depth: int) -> None:
    text = "[" * depth + "]" * depth
    result = score({"json_schema": {"schema": {"type": "array"}}}, text, {})
    if depth < 10_000:  # deep but within reach: a valid array
        assert (result.passed, result.value, result.explanation) == (True, 1.0, "valid (text)")
    else:  # a failing verdict, not an exception
        assert (result.passed, result.value, result.invalid) == (False, 0.0, False)
        assert result.explanation == "invalid JSON: nested too deeply to parse"


def test_deep_json_that_parses_but_is_too_deep_to_validate() -> None:
    schema = {
        "$ref": "#/$defs/n",
        "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
    }
    text = "[" * 900 + "]" * 900
    result = score({"json_schema": {"schema": schema}}, text, {})
    assert (result.passed, result.value, result.invalid) == (False, 0.0, False)
    assert result.explanation == "JSON from text is nested too deeply to validate"


def test_huge_json_array() -> None:
    text = json.dumps(list(range(200_000)))
    assert score({"json_schema": {"schema": {"type": "array"}}}, text, {}).passed


def test_extract_json_modes() -> None:
    assert extract_json('x {"a": 1} y', [], "object") == ({"a": 1}, "object")
    assert extract_json("[1, 2]", [], "text") == ([1, 2], "text")
    with pytest.raises(Exception, match="no fenced code block"):
        extract_json("[1]", [], "fenced")


def test_schema_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "person.json").write_text(json.dumps(SCHEMA))
    [scorer] = build_scorers(
        [{"json_schema": {"schema_file": "evals/person.json"}}], base_dir=tmp_path
    )
    assert scorer.score(ctx('{"name": "A", "age": 1}')).passed


def test_yaml_schema_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("type: object\nrequired: [a]\n")
    [scorer] = build_scorers([{"json_schema": {"schema_file": "s.yaml"}}], base_dir=tmp_path)
    assert not scorer.score(ctx("{}")).passed


def test_broken_schema_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"type": "object", "properties": {"a": {"type": 12}}}')
    (tmp_path / "notjson.json").write_text("{type: object")
    items = [
        {"json_schema": {"schema_file": "bad.json"}},
        {"json_schema": {"schema_file": "notjson.json"}, "name": "x"},
        {"type": "json_schema", "name": "y", "schema_file": "missing.json"},
        {"json_schema": {"schema": {"type": "object"}, "schema_file": "bad.json"}, "name": "z"},
    ]
    with pytest.raises(ConfigError) as info:
        build_scorers(items, base_dir=tmp_path, file="eval.yaml")
    lines = info.value.errors
    assert len(lines) == 4
    assert lines[0].startswith("scorers[0].schema_file: invalid JSON Schema at $.properties.a.type")
    assert lines[1].startswith("scorers[1].schema_file: ") and "not JSON" in lines[1]
    assert lines[2].startswith("scorers[2].schema_file: file not found")
    assert lines[3] == "scorers[3].schema: give exactly one of `schema` and `schema_file`"
    assert str(info.value).startswith("eval.yaml: 4 problems")


def test_inline_schema_errors_too() -> None:
    with pytest.raises(ConfigError, match=r"scorers\[0\]\.schema: invalid JSON Schema"):
        build_scorers([{"json_schema": {"schema": {"type": "objekt"}}}], base_dir=Path("."))


def test_format_checking_is_opt_in() -> None:
    schema = {"type": "string", "format": "email"}
    assert score({"json_schema": {"schema": schema}}, '"nope"', {}).passed
    strict = {"json_schema": {"schema": schema, "check_formats": True}}
    assert not score(strict, '"nope"', {}).passed


def test_unresolvable_ref_is_invalid_not_a_crash() -> None:
    schema = {"$ref": "https://example.invalid/schema.json"}
    result = score({"json_schema": {"schema": schema}}, "{}", {})
    assert result.invalid and "schema could not be applied" in result.explanation


def test_errored_response_fails() -> None:
    result = score(ITEM, None, {}, status="errored")
    assert (result.value, result.passed) == (0.0, False)


def test_hostile_unbalanced_braces_stay_fast() -> None:
    import time

    text = "{" * 200_000 + "}" * 199_999 + ' "x'
    started = time.perf_counter()
    result = score(ITEM, text, {})
    assert not result.passed
    # Linear work takes seconds on a loaded 2-core CI machine (7 s seen under load); a
    # quadratic scan of these 400,000 characters takes hours: the bound tells them apart
    # without timing the machine (speed itself is measured in benchmarks/).
    assert time.perf_counter() - started < 120


REQUESTED = {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}


def test_schema_request_validates_against_the_requests_output_schema() -> None:
    scorer = build_scorers([{"json_schema": {"schema": "request"}}], base_dir=Path("."))[0]
    good = scorer.score(ctx('{"name": "Ada", "age": 36}', {}, request=REQUESTED))
    assert good.passed
    bad = scorer.score(ctx('{"name": "Ada", "age": -1}', {}, request=REQUESTED))
    assert bad.explanation == "$.age: -1 is less than the minimum of 0"


def test_schema_request_without_an_output_format_is_invalid() -> None:
    scorer = build_scorers([{"json_schema": {"schema": "request"}}], base_dir=Path("."))[0]
    result = scorer.score(ctx('{"name": "Ada"}', {}))
    assert result.invalid and "asked for no structured output" in result.explanation


def test_a_file_name_under_schema_is_one_error_pointing_to_schema_file(tmp_path: Path) -> None:
    """Issue 17: `schema: file.json` gave three union errors (dict, bool, 'request')."""
    with pytest.raises(ConfigError) as caught:
        build_scorers([{"json_schema": {"schema": "file.json"}}], base_dir=tmp_path)
    message = str(caught.value)
    assert "not a file name ('file.json')" in message
    assert "dict[str,any]" not in message and "valid boolean" not in message
    assert "hint: for a file write `schema_file: file.json`" in message
