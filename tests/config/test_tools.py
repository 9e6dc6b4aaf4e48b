"""Tools, tool_choice and structured-output schemas in a config: loaded, checked, and
refused with the field path and YAML line when bad."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import anthropic.types
import pytest

from batchmark._errors import ConfigError
from batchmark.config._schema import load_config
from batchmark.config._tools import TOOL_CHOICE_KEYS, TOOL_KEYS, tool_problems

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def write(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    files = {"data.jsonl": '{"id": 1, "q": "hi"}\n', **(files or {})}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config = tmp_path / "eval.yaml"
    config.write_text(textwrap.dedent(body))
    return config


def config_with(variant: str, extra: str = "") -> str:
    return (
        "name: t\n"
        "dataset: {path: data.jsonl, id_field: id}\n"
        "prompts:\n"
        f"  - {variant}\n"
        "models: [claude-haiku-4-5]\n" + extra
    )


def load_error(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body, files))
    return str(info.value)


def test_the_tool_keys_are_the_sdks() -> None:
    param = anthropic.types.ToolParam
    assert param.__required_keys__ | param.__optional_keys__ == TOOL_KEYS
    for kind, cls in {
        "auto": anthropic.types.ToolChoiceAutoParam,
        "any": anthropic.types.ToolChoiceAnyParam,
        "tool": anthropic.types.ToolChoiceToolParam,
        "none": anthropic.types.ToolChoiceNoneParam,
    }.items():
        assert cls.__required_keys__ | cls.__optional_keys__ == TOOL_CHOICE_KEYS[kind]


def test_variant_tools_inline_and_from_a_file_load(tmp_path: Path) -> None:
    files = {"tools.json": json.dumps([WEATHER])}
    body = (
        "name: t\ndataset: {path: data.jsonl}\nprompts:\n"
        f"  - {{name: a, user: '{{{{ q }}}}', tools: {json.dumps([WEATHER])}, "
        "tool_choice: {type: any}}\n"
        "  - {name: b, user: '{{ q }}', tools_file: tools.json}\n"
        "models: [claude-haiku-4-5]\n"
    )
    spec = load_config(write(tmp_path, body, files))
    assert spec.prompts[0].static_tools == [WEATHER]
    assert spec.prompts[1].static_tools == [WEATHER]
    assert spec.prompts[1].tools_file == str(tmp_path / "tools.json")


def test_a_yaml_tools_file_loads_and_is_part_of_the_config_hash(tmp_path: Path) -> None:
    import yaml

    files = {"tools.yaml": yaml.safe_dump([WEATHER])}
    config = write(
        tmp_path, config_with("{name: b, user: '{{ q }}', tools_file: tools.yaml}"), files
    )
    first = load_config(config)
    assert first.prompts[0].static_tools == [WEATHER]
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump([{**WEATHER, "description": "Other."}]))
    assert load_config(config).hash != first.hash


def test_a_bad_tool_name_names_the_field_path_and_line(tmp_path: Path) -> None:
    body = textwrap.dedent(
        """\
        name: t
        dataset: {path: data.jsonl}
        prompts:
          - name: a
            user: "{{ q }}"
            tools:
              - name: get weather
                input_schema: {type: object}
        models: [claude-haiku-4-5]
        """
    )
    error = load_error(tmp_path, body)
    assert "prompts[0].tools[0].name (line 7)" in error
    assert "'get weather' does not match ^[a-zA-Z0-9_-]{1,64}$" in error


def test_an_invalid_input_schema_names_the_path_inside_the_schema(tmp_path: Path) -> None:
    body = textwrap.dedent(
        """\
        name: t
        dataset: {path: data.jsonl}
        prompts:
          - name: a
            user: "{{ q }}"
            tools:
              - name: ok
                input_schema: {type: object}
              - name: broken
                input_schema:
                  type: object
                  properties:
                    city: {type: strin}
        models: [claude-haiku-4-5]
        """
    )
    error = load_error(tmp_path, body)
    assert "prompts[0].tools[1].input_schema.properties.city.type (line 13)" in error
    assert "invalid JSON Schema at $.properties.city.type" in error


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"name": "x"}, "every tool needs an `input_schema`"),
        ({"name": "x", "input_schema": {"type": "string"}}, 'must be "object"'),
        ({"name": "x", "input_schema": {}, "input_shema": {}}, "did you mean `input_schema`?"),
        ({"input_schema": {}}, "every tool needs a `name`"),
        ("get_weather", "a tool is a mapping"),
    ],
)
def test_tool_shapes_are_checked(tool: object, message: str) -> None:
    problems = tool_problems([tool])
    assert problems and message in f"{problems[0].message} {problems[0].hint}"


def test_a_server_tool_is_passed_with_its_name_checked_only() -> None:
    assert (
        tool_problems([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]) == []
    )


def test_duplicate_tool_names_are_refused() -> None:
    [problem] = tool_problems([WEATHER, WEATHER])
    assert problem.at == (1, "name") and "used twice" in problem.message


def test_params_tools_are_checked_too(tmp_path: Path) -> None:
    extra = "params: {tools: [{name: x, input_schema: {type: object, required: oops}}]}\n"
    error = load_error(tmp_path, config_with("{name: a, user: '{{ q }}'}", extra))
    assert "params.tools[0].input_schema.required" in error


def test_a_bad_tools_file_names_the_file_and_the_tool(tmp_path: Path) -> None:
    files = {"tools.json": json.dumps([WEATHER, {"name": "bad name", "input_schema": {}}])}
    error = load_error(
        tmp_path, config_with("{name: a, user: '{{ q }}', tools_file: tools.json}"), files
    )
    assert "prompts[0].tools_file (line 4)" in error
    assert f"{tmp_path / 'tools.json'}: tools[1].name" in error


def test_every_problem_of_a_tools_file_is_named(tmp_path: Path) -> None:
    tools = [{"name": "a b", "input_schema": {"type": 1}}, {"input_schema": {}}]
    files = {"tools.json": json.dumps(tools)}
    body = config_with("{name: a, user: '{{ q }}', tools_file: tools.json}")
    error = load_error(tmp_path, body, files)
    assert "3 problems" in error
    for where in ("tools[0].name", "tools[0].input_schema.type", "tools[1].name"):
        assert f"prompts[0].tools_file (line 4): {tmp_path / 'tools.json'}: {where}" in error


def test_a_tools_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    files = {"tools.json": "[{"}
    error = load_error(
        tmp_path, config_with("{name: a, user: '{{ q }}', tools_file: tools.json}"), files
    )
    assert "tools.json: not JSON" in error


def test_a_missing_tools_file_is_named(tmp_path: Path) -> None:
    error = load_error(tmp_path, config_with("{name: a, user: '{{ q }}', tools_file: nope.json}"))
    assert "prompts[0].tools_file" in error and "file not found" in error


def test_tools_in_params_and_in_a_variant_name_both_fields(tmp_path: Path) -> None:
    body = config_with(
        f"{{name: a, user: '{{{{ q }}}}', tools: {json.dumps([WEATHER])}}}",
        "params: {tools: [{name: other, input_schema: {type: object}}]}\n",
    )
    error = load_error(tmp_path, body)
    assert "prompts[0].tools (line 4)" in error
    assert "`prompts[0].tools` and `params.tools` both give the request's tools" in error


def test_tool_choice_in_model_params_and_in_a_variant_name_both_fields(tmp_path: Path) -> None:
    body = (
        "name: t\ndataset: {path: data.jsonl}\nprompts:\n"
        f"  - {{name: a, user: '{{{{ q }}}}', tools: {json.dumps([WEATHER])}, "
        "tool_choice: {type: any}}\n"
        "models:\n  - {model: claude-haiku-4-5, params: {tool_choice: {type: auto}}}\n"
    )
    error = load_error(tmp_path, body)
    assert "`prompts[0].tool_choice` and `models[0].params.tool_choice` both give" in error


def test_a_tool_choice_naming_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    body = config_with(
        f"{{name: a, user: '{{{{ q }}}}', tools: {json.dumps([WEATHER])}, "
        "tool_choice: {type: tool, name: get_time}}"
    )
    error = load_error(tmp_path, body)
    assert "prompts[0].tool_choice.name (line 4)" in error
    assert "'get_time', which is not among the request's tools (get_weather)" in error


def test_a_tool_choice_of_an_unknown_type_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, config_with("{name: a, user: '{{ q }}', tool_choice: {type: some}}")
    )
    assert (
        "prompts[0].tool_choice.type" in error and "must be one of auto, any, tool, none" in error
    )


def test_output_schema_is_checked(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, config_with("{name: a, user: '{{ q }}', output_schema: {type: objekt}}")
    )
    assert "prompts[0].output_schema.type (line 4)" in error and "invalid JSON Schema" in error


def test_output_schema_from_a_file_becomes_the_output_format(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    files = {"answer.schema.json": json.dumps(schema)}
    body = config_with("{name: a, user: '{{ q }}', output_schema_file: answer.schema.json}")
    spec = load_config(write(tmp_path, body, files))
    assert spec.prompts[0].output_format == {"type": "json_schema", "schema": schema}


def test_params_output_config_format_is_checked(tmp_path: Path) -> None:
    extra = "params: {output_config: {format: {type: json, schema: {type: object}}}}\n"
    error = load_error(tmp_path, config_with("{name: a, user: '{{ q }}'}", extra))
    assert "params.output_config.format.type" in error and "must be 'json_schema'" in error


def test_output_schema_in_a_variant_and_in_params_name_both_fields(tmp_path: Path) -> None:
    extra = "params: {output_config: {format: {type: json_schema, schema: {type: object}}}}\n"
    body = config_with("{name: a, user: '{{ q }}', output_schema: {type: object}}", extra)
    error = load_error(tmp_path, body)
    assert "`prompts[0].output_schema` and `params.output_config.format` both give" in error


def test_effort_in_params_and_a_variant_output_schema_go_together(tmp_path: Path) -> None:
    extra = "params: {output_config: {effort: low}}\n"
    body = config_with("{name: a, user: '{{ q }}', output_schema: {type: object}}", extra)
    load_config(write(tmp_path, body))


def test_every_problem_of_a_tool_list_is_reported_at_once(tmp_path: Path) -> None:
    body = textwrap.dedent(
        """\
        name: t
        dataset: {path: data.jsonl}
        prompts:
          - name: a
            user: "{{ q }}"
            tools:
              - {name: "bad name", input_schema: {type: object}}
              - {name: ok, input_schema: {type: object}, descripton: "The time."}
        models: [claude-haiku-4-5]
        params: {output_config: {format: {type: json, schema: {type: 1}}}}
        """
    )
    error = load_error(tmp_path, body)
    assert "4 problems" in error
    assert "prompts[0].tools[0].name (line 7)" in error
    assert "prompts[0].tools[1].descripton (line 8)" in error and "`description`" in error
    assert "params.output_config.format.type (line 10)" in error
    assert "params.output_config.format.schema.type (line 10)" in error


def test_a_request_schema_scorer_without_any_output_schema_is_refused(tmp_path: Path) -> None:
    scorers = "scorers:\n  - json_schema: {schema: request}\n"
    error = load_error(tmp_path, config_with("{name: a, user: '{{ q }}'}", scorers))
    assert "scorers[0].schema (line 7)" in error and "no request asks for one" in error
    with_schema = config_with("{name: a, user: '{{ q }}', output_schema: {type: object}}", scorers)
    load_config(write(tmp_path, with_schema))


def test_a_params_tool_choice_is_checked_against_the_variants_tools(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, config_with("{name: a, user: '{{ q }}'}", "params: {tool_choice: {type: tool}}\n")
    )
    assert "params.tool_choice.name" in error and "needs the tool's `name`" in error
    body = config_with(
        f"{{name: a, user: '{{{{ q }}}}', tools: {json.dumps([WEATHER])}}}",
        "params: {tool_choice: {type: tool, name: get_time}}\n",
    )
    error = load_error(tmp_path, body)
    assert "params.tool_choice.name (line 6)" in error and "'get_time', which is not among" in error
