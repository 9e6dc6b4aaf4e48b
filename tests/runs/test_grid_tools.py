"""Tools and output formats in the grid's requests: a variant's tools are a static prefix
(cacheable), a row's own tools follow them and are checked row by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchmark._errors import RenderError
from batchmark.config._schema import EvalSpec, load_config
from batchmark.runs._grid import expand, validate_spec

LONG = "Look things up carefully. " * 400  # over every model's minimum cacheable prefix
WEATHER = {
    "name": "get_weather",
    "description": LONG,
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME = {"name": "get_time", "input_schema": {"type": "object"}}
BREAKPOINT = {"type": "ephemeral", "ttl": "1h"}


def spec_of(
    tmp_path: Path, variant: dict, rows: list[dict], params: str = "{max_tokens: 32}"
) -> EvalSpec:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "eval.yaml"
    config.write_text(
        "name: t\ndataset: {path: d.jsonl, id_field: id}\n"
        f"prompts:\n  - {json.dumps(variant)}\n"
        f"models: [claude-sonnet-4-6]\nparams: {params}\n"
    )
    return load_config(config)


ROWS = [{"id": "r1", "q": "Paris?", "tools": [TIME]}, {"id": "r2", "q": "Oslo?", "tools": []}]


def test_variant_tools_and_tool_choice_are_in_every_request_with_a_breakpoint(
    tmp_path: Path,
) -> None:
    variant = {"name": "a", "user": "{{ q }}", "tools": [WEATHER], "tool_choice": {"type": "any"}}
    requests = list(expand(spec_of(tmp_path, variant, ROWS)))
    for request in requests:
        assert request.params["tools"] == [{**WEATHER, "cache_control": BREAKPOINT}]
        assert request.params["tool_choice"] == {"type": "any"}
    report = validate_spec(spec_of(tmp_path, variant, ROWS))
    assert report.cache_breakpoints == (("a", "claude-sonnet-4-6", "tools[0]"),)


def test_row_tools_follow_the_static_tools_and_carry_no_breakpoint(tmp_path: Path) -> None:
    variant = {
        "name": "a",
        "system": LONG,  # static, but after the row's tools: not part of the prefix
        "user": "{{ q }}",
        "tools": [WEATHER],
        "tools_field": "tools",
    }
    spec = spec_of(tmp_path, variant, ROWS)
    by_row = {r.row_id: r.params for r in expand(spec)}
    cached_weather = {**WEATHER, "cache_control": BREAKPOINT}
    assert by_row["r1"]["tools"] == [cached_weather, TIME]
    assert by_row["r2"]["tools"] == [cached_weather]  # [] adds none
    assert by_row["r1"]["system"] == LONG  # the breakpoint stays on the static tools
    assert validate_spec(spec).cache_breakpoints == (("a", "claude-sonnet-4-6", "tools[0]"),)


def test_row_tools_alone_get_no_breakpoint(tmp_path: Path) -> None:
    rows = [{"id": "r1", "q": "x", "tools": [{**WEATHER, "name": "lookup"}]}]
    spec = spec_of(tmp_path, {"name": "a", "user": "{{ q }}", "tools_field": "tools"}, rows)
    [request] = expand(spec)
    assert "cache_control" not in request.params["tools"][0]
    assert validate_spec(spec).cache_breakpoints == ()


def test_row_tools_in_a_json_string_are_parsed(tmp_path: Path) -> None:
    rows = [{"id": "r1", "q": "x", "tools": json.dumps([TIME])}]
    spec = spec_of(tmp_path, {"name": "a", "user": "{{ q }}", "tools_field": "tools"}, rows)
    assert [r.params["tools"] for r in expand(spec)] == [[TIME]]


def test_custom_ids_and_cache_keys_are_deterministic_with_row_tools(tmp_path: Path) -> None:
    variant = {"name": "a", "user": "{{ q }}", "tools": [WEATHER], "tools_field": "tools"}
    first = [(r.custom_id, r.cache_key) for r in expand(spec_of(tmp_path / "1", variant, ROWS))]
    again = [(r.custom_id, r.cache_key) for r in expand(spec_of(tmp_path / "2", variant, ROWS))]
    assert first == again and len(set(first)) == 2
    other = [{**ROWS[0], "tools": [{**TIME, "description": "Now."}]}, ROWS[1]]
    changed = [r.cache_key for r in expand(spec_of(tmp_path / "3", variant, other))]
    assert changed[0] != first[0][1] and changed[1] == first[1][1]


@pytest.mark.parametrize(
    ("row_tools", "message"),
    [
        ([{"name": "bad name", "input_schema": {}}], "tools[0].name: tool name 'bad name'"),
        ([{"name": "x", "input_schema": {"type": 3}}], "tools[0].input_schema.type: invalid"),
        ([{**TIME, "name": "get_weather"}], "also a static tool's"),
        ([{**TIME, "cache_control": {"type": "ephemeral"}}], "take no cache breakpoint"),
        ("[{", "not a JSON list of tools"),
        ({"name": "x"}, "expected a list of tools, got dict"),
    ],
)
def test_a_bad_row_tool_names_the_variant_row_and_field(
    tmp_path: Path, row_tools: object, message: str
) -> None:
    # r1 has none (null): no tools of its own.
    rows = [{"id": "r1", "q": "x", "tools": None}, {"id": "r2", "q": "y", "tools": row_tools}]
    variant = {"name": "a", "user": "{{ q }}", "tools": [WEATHER], "tools_field": "tools"}
    with pytest.raises(RenderError) as info:
        validate_spec(spec_of(tmp_path, variant, rows))
    text = str(info.value)
    assert "prompt variant 'a', row 'r2': tools_field 'tools'" in text
    assert message in text
    assert str(tmp_path / "d.jsonl") in text  # the file holding the row, not the config


def test_a_row_without_the_tools_field_is_an_error(tmp_path: Path) -> None:
    rows = [{"id": "r1", "q": "x"}]
    spec = spec_of(tmp_path, {"name": "a", "user": "{{ q }}", "tools_field": "tools"}, rows)
    with pytest.raises(RenderError, match="row 'r1': tools_field 'tools': the row has no such"):
        list(expand(spec))


def test_a_tool_choice_naming_a_tool_the_row_lacks_is_an_error(tmp_path: Path) -> None:
    variant = {
        "name": "a",
        "user": "{{ q }}",
        "tools_field": "tools",
        "tool_choice": {"type": "tool", "name": "get_time"},
    }
    with pytest.raises(RenderError, match="row 'r2'.*tool_choice.*'get_time'"):
        list(expand(spec_of(tmp_path, variant, ROWS)))


def test_a_variant_output_schema_joins_params_output_config(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    variant = {"name": "a", "user": "{{ q }}", "output_schema": schema}
    spec = spec_of(tmp_path, variant, ROWS, params="{output_config: {effort: low}}")
    for request in expand(spec):
        assert request.params["output_config"] == {
            "effort": "low",
            "format": {"type": "json_schema", "schema": schema},
        }


def test_row_tools_of_different_shapes_arrive_as_written(tmp_path: Path) -> None:
    # Tools of differing shapes in one column come through as written (no keys added).
    small = {"name": "lookup", "input_schema": {"type": "object", "required": ["id"]}}
    rows = [{"id": "r1", "q": "x", "tools": [WEATHER]}, {"id": "r2", "q": "y", "tools": [small]}]
    spec = spec_of(tmp_path, {"name": "a", "user": "{{ q }}", "tools_field": "tools"}, rows)
    assert {r.row_id: r.params["tools"] for r in expand(spec)} == {"r1": [WEATHER], "r2": [small]}


def test_row_tools_from_a_parquet_struct_column_carry_no_filled_in_nulls(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A struct column has the keys of every row: TIME gets `description: null` there.
    described = {**TIME, "name": "now", "description": "The time."}
    table = pa.Table.from_pylist(
        [{"id": "r1", "q": "x", "tools": [described]}, {"id": "r2", "q": "y", "tools": [TIME]}]
    )
    pq.write_table(table, tmp_path / "d.parquet")
    (tmp_path / "eval.yaml").write_text(
        "name: t\ndataset: {path: d.parquet, id_field: id}\n"
        "prompts: [{name: a, user: '{{ q }}', tools_field: tools}]\n"
        "models: [claude-sonnet-4-6]\n"
    )
    spec = load_config(tmp_path / "eval.yaml")
    assert {r.row_id: r.params["tools"] for r in expand(spec)} == {"r1": [described], "r2": [TIME]}


def test_a_request_rule_broken_by_a_variants_tool_choice_names_the_variants_field(
    tmp_path: Path,
) -> None:
    from batchmark._errors import ConfigError

    variant = {"name": "a", "user": "{{ q }}", "tools": [TIME], "tool_choice": {"type": "any"}}
    params = "{max_tokens: 4096, thinking: {type: adaptive}}"
    with pytest.raises(ConfigError) as info:
        validate_spec(spec_of(tmp_path, variant, ROWS[:1], params=params))
    assert (
        "prompts[0].tool_choice (line 4): Thinking may not be enabled when tool_choice forces"
        in (str(info.value))
    )
