from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest

from batchmark._errors import ConfigError
from batchmark.config._schema import (
    API_MAX_BATCH_BYTES,
    DEFAULT_MAX_TOKENS,
    EvalSpec,
    config_json_schema,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]

BASE = """\
name: t
dataset: {path: data.jsonl, id_field: id}
prompts:
  - {name: plain, user: "{{ q }}"}
models: [claude-haiku-4-5]
"""


def write(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    files = {"data.jsonl": '{"id": 1, "q": "hi"}\n', **(files or {})}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = tmp_path / "eval.yaml"
    config.write_text(textwrap.dedent(body))
    return config


def load_error(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body, files))
    return info.value


def test_shipped_quickstart_config_loads() -> None:
    spec = load_config(REPO / "configs" / "quickstart.yaml")
    assert isinstance(spec, EvalSpec)
    assert [v.name for v in spec.prompts] == ["plain", "fewshot"]
    assert [m.key for m in spec.models] == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    assert spec.dataset.path == str(REPO / "evals" / "quickstart" / "questions.jsonl")


def test_paths_are_resolved_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """\
        name: t
        dataset: {path: data/rows.jsonl}
        prompts: [{name: a, user_file: templates/user.j2}]
        models: [m]
        emulator: {responder: "scripted:rules.yaml"}
        """,
        {"data/rows.jsonl": "{}\n", "templates/user.j2": "hi", "rules.yaml": "[]"},
    )
    spec = load_config(config)
    assert spec.path == config and spec.base_dir == tmp_path
    assert spec.dataset.path == str(tmp_path / "data" / "rows.jsonl")
    assert spec.prompts[0].user_file == str(tmp_path / "templates" / "user.j2")
    assert spec.emulator.responder == f"scripted:{tmp_path / 'rules.yaml'}"


def test_spec_keeps_the_raw_yaml_text(tmp_path: Path) -> None:
    config = write(tmp_path, BASE)
    assert load_config(config).text == config.read_text()


def test_spec_hash_covers_template_files(tmp_path: Path) -> None:
    body = BASE.replace('user: "{{ q }}"', "user_file: u.j2")
    first = load_config(write(tmp_path, body, {"u.j2": "{{ q }}"})).hash
    again = load_config(write(tmp_path, body, {"u.j2": "{{ q }}"})).hash
    edited = load_config(write(tmp_path, body, {"u.j2": "Q: {{ q }}"})).hash
    assert first == again != edited


def test_model_params_override_top_level_params_key_by_key(tmp_path: Path) -> None:
    spec = load_config(
        write(
            tmp_path,
            """\
            name: t
            dataset: {path: data.jsonl}
            prompts: [{name: a, user: x}]
            models:
              - claude-haiku-4-5
              - {name: s, model: claude-sonnet-4-6, params: {max_tokens: 5, top_x: 1}}
            params: {max_tokens: 100, stop_sequences: ["##"]}
            """,
        )
    )
    haiku, sonnet = spec.models
    assert spec.model_params(haiku) == {"max_tokens": 100, "stop_sequences": ["##"]}
    assert spec.model_params(sonnet) == {"max_tokens": 5, "stop_sequences": ["##"], "top_x": 1}


def test_max_tokens_defaults_to_1024(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, BASE))
    assert (
        spec.model_params(spec.models[0])
        == {"max_tokens": DEFAULT_MAX_TOKENS}
        == {"max_tokens": 1024}
    )


def test_config_file_not_found_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    err = load_error(tmp_path, "name: t\nprompts: [a, b\nmodels: x\n")
    assert str(tmp_path / "eval.yaml") in str(err)
    assert "invalid YAML at line 3, column" in str(err)


def test_empty_config_file_is_refused(tmp_path: Path) -> None:
    assert "empty" in str(load_error(tmp_path, ""))


def test_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "must be a mapping, got list" in str(load_error(tmp_path, "- a\n- b\n"))


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "name: again\n")
    assert "name (line 6): duplicate key (first at line 1)" in str(err)


def test_unknown_field_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("id_field: id", "id_feild: id"))
    assert "dataset.id_feild (line 2): unknown field" in str(err)
    assert "did you mean `id_field`?" in str(err)


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("models: [claude-haiku-4-5]\n", ""))
    assert "models: required field is missing" in str(err)


def test_wrong_type_names_the_field_and_value(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "epochs: three\n")
    assert "epochs (line 6): Input should be a valid integer (got 'three')" in str(err)


def test_missing_dataset_file_names_its_absolute_path(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("data.jsonl", "missing.jsonl"))
    assert f"dataset.path (line 2): file not found: {tmp_path / 'missing.jsonl'}" in str(err)


def test_unknown_dataset_extension_asks_for_a_format(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("data.jsonl", "data.txt"), {"data.txt": "x"})
    assert "dataset.format" in str(err) and "cannot tell the format" in str(err)


def test_dataset_needs_exactly_one_of_path_and_hub(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("path: data.jsonl", "hub: a/b, path: data.jsonl"))
    assert "give exactly one of `path`" in str(err)


def test_missing_template_file_names_field_and_path(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace('user: "{{ q }}"', "user_file: t/u.j2"))
    assert f"prompts[0].user_file (line 4): file not found: {tmp_path / 't' / 'u.j2'}" in str(err)


def test_template_syntax_error_in_a_file_names_the_file_and_line(tmp_path: Path) -> None:
    body = BASE.replace('user: "{{ q }}"', "user_file: u.j2")
    err = load_error(tmp_path, body, {"u.j2": "line one\n{{ q }\n"})
    assert "prompts[0].user_file" in str(err)
    assert f"{tmp_path / 'u.j2'}: template syntax error at line 2" in str(err)


def test_inline_template_syntax_error_names_the_field(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace('user: "{{ q }}"', 'user: "{% if q %}"'))
    assert "prompts[0].user (line 4): template syntax error at line 1" in str(err)


def test_unknown_filter_is_a_template_error(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace('user: "{{ q }}"', 'user: "{{ q | random }}"'))
    assert "No filter named 'random'" in str(err)


def test_variant_needs_exactly_one_of_user_user_file_messages(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace('user: "{{ q }}"', 'system: "s"'))
    assert "prompts[0] (line 4): give exactly one of `user`, `user_file` and `messages`" in str(err)


def test_duplicate_variant_names_are_refused(tmp_path: Path) -> None:
    body = BASE.replace('  - {name: plain, user: "{{ q }}"}\n', "  - {name: a, user: x}\n" * 2)
    err = load_error(tmp_path, body)
    assert "prompts[1].name (line 5): duplicate variant name 'a' (also prompts[0])" in str(err)


def test_duplicate_model_keys_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("[claude-haiku-4-5]", "[m, {model: m}]"))
    assert "models[1].model (line 5): duplicate model key 'm' (also models[0])" in str(err)
    assert "distinct name" in str(err)


def test_one_model_twice_under_distinct_names_is_fine(tmp_path: Path) -> None:
    body = BASE.replace("[claude-haiku-4-5]", "[m, {name: m-short, model: m}]")
    assert [m.key for m in load_config(write(tmp_path, body)).models] == ["m", "m-short"]


@pytest.mark.parametrize("param", ["temperature", "top_p", "top_k"])
def test_sampling_params_need_the_legacy_api_version(tmp_path: Path, param: str) -> None:
    err = load_error(tmp_path, BASE + f"params: {{{param}: 1}}\n")
    assert f"params.{param} (line 6): `{param}` is rejected" in str(err)
    assert 'set `api_version: "2023-06-01"` in the config' in str(err)


def test_sampling_params_in_model_params_are_named(tmp_path: Path) -> None:
    body = BASE.replace("[claude-haiku-4-5]", "[{model: m, params: {temperature: 0.0}}]")
    assert "models[0].params.temperature" in str(load_error(tmp_path, body))


def test_sampling_params_with_legacy_api_version_are_kept(tmp_path: Path) -> None:
    # Unquoted, YAML reads the version as a date; it still counts.
    spec = load_config(
        write(tmp_path, BASE + "api_version: 2023-06-01\nparams: {temperature: 0}\n")
    )
    assert spec.api_version == "2023-06-01"
    assert spec.model_params(spec.models[0])["temperature"] == 0


def test_stream_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "params: {stream: false}\n")
    assert "params.stream (line 6): `stream` is not allowed in batch requests" in str(err)


def test_messages_cannot_be_set_in_params(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "params: {messages: []}\n")
    assert "params.messages (line 6): `messages` cannot be set in params" in str(err)


@pytest.mark.parametrize("value", ["0", "-3", "1.5", '"12"', "true"])
def test_max_tokens_must_be_a_positive_integer(tmp_path: Path, value: str) -> None:
    body = BASE.replace("[claude-haiku-4-5]", f"[{{model: m, params: {{max_tokens: {value}}}}}]")
    assert "models[0].params.max_tokens (line 5): " in str(load_error(tmp_path, body))


def test_model_entry_of_the_wrong_type_is_explained(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("[claude-haiku-4-5]", "[5]"))
    assert "models[0] (line 5): expected a model id or a mapping with `model`, got int" in str(err)


def test_batch_limits_are_checked(tmp_path: Path) -> None:
    body = BASE + f"batch: {{max_requests: 100001, max_bytes: {API_MAX_BATCH_BYTES + 1}}}\n"
    err = load_error(tmp_path, body)
    assert "batch.max_requests" in str(err) and "batch.max_bytes" in str(err)


def test_max_poll_interval_must_not_be_below_poll_interval(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "batch: {poll_interval: 10, max_poll_interval: 5}\n")
    assert "batch.max_poll_interval (line 6): must be >= poll_interval" in str(err)


def test_eval_name_must_be_a_safe_folder_name(tmp_path: Path) -> None:
    assert "name (line 1)" in str(load_error(tmp_path, BASE.replace("name: t", "name: a/b")))
    assert "only dots" in str(load_error(tmp_path, BASE.replace("name: t", "name: '..'")))


def test_reserved_template_variable_cannot_be_mapped(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("id_field: id", "fields: {row: q}"))
    assert "dataset.fields.row (line 2): 'row' is reserved" in str(err)


def test_missing_scripted_responder_file_is_named(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + "emulator: {responder: 'scripted:rules.yaml'}\n")
    assert f"emulator.responder (line 6): scripted responder file not found: {tmp_path}" in str(err)


def test_emulator_faults_pass_through_untouched(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, BASE + "emulator: {faults: {http_429: 0.1}}\n"))
    assert spec.emulator.faults == {"http_429": 0.1}


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """\
        name: t
        dataset: {path: nope.jsonl}
        prompts:
          - {name: a, user: "{{ q }"}
          - {name: a, user: x}
        models: [{model: m, params: {max_tokens: 0}}]
        epochs: 0
        colour: blue
        """,
    )
    assert len(err.errors) == 6
    for where in ("dataset.path", "prompts[0].user", "prompts[1].name", "models[0].params"):
        assert where in str(err)
    assert "epochs" in str(err) and "colour" in str(err)


def test_json_schema_documents_every_field() -> None:
    schema = config_json_schema()

    def check(node: dict, where: str) -> None:
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}.{name} has no description"

    check(schema, "root")
    for name, definition in schema["$defs"].items():
        check(definition, name)
    assert "stream" not in schema["$defs"]["Params"]["properties"]


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_matches_the_json_schema(config: Path) -> None:
    import yaml

    data = yaml.safe_load(config.read_text())
    jsonschema.validate(data, config_json_schema())
    bad = {**data, "colour": "blue"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, config_json_schema())


def test_text_replaces_the_file_content_but_paths_resolve_from_its_folder(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, BASE)
    snapshot = BASE.replace("name: t", "name: snapshot")
    spec = load_config(config, text=snapshot)
    assert spec.name == "snapshot" and spec.text == snapshot
    assert spec.dataset.path == str(tmp_path / "data.jsonl")
    assert spec.hash != load_config(config).hash


def test_text_errors_name_the_config_path(tmp_path: Path) -> None:
    config = write(tmp_path, BASE)
    with pytest.raises(ConfigError) as info:
        load_config(config, text=BASE + "colour: blue\n")
    assert info.value.file == str(config) and "colour (line 6): unknown field" in str(info.value)


# --- scorers ------------------------------------------------------------------------

SCORERS = """\
scorers:
  - exact_match: {target: "{{ q }}", normalize: true}
  - judge:
      model: claude-haiku-4-5
      rubric_file: rubrics/judge.j2
  - {type: json_schema, name: valid, schema_file: schemas/answer.json}
"""
SCORER_FILES = {
    "rubrics/judge.j2": "Question: {{ q }}\nResponse: {{ response }}",
    "schemas/answer.json": '{"type": "object"}',
}


def test_scorers_are_kept_as_written_and_built_once(tmp_path: Path) -> None:
    from batchmark.scorers import ExactMatch, JsonSchema, JudgeScorer

    spec = load_config(write(tmp_path, BASE + SCORERS, SCORER_FILES))
    assert spec.scorers[0] == {"exact_match": {"target": "{{ q }}", "normalize": True}}
    scorers = spec.build_scorers()
    assert [type(s) for s in scorers] == [ExactMatch, JudgeScorer, JsonSchema]
    assert [s.name for s in scorers] == ["exact_match", "judge", "valid"]
    assert spec.build_scorers() is scorers


def test_no_scorers_by_default_and_for_an_empty_key(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE)).build_scorers() == []
    spec = load_config(write(tmp_path, BASE + "scorers:\n"))
    assert spec.scorers == [] and spec.build_scorers() == []


def test_a_bad_scorer_is_reported_with_the_other_config_errors(tmp_path: Path) -> None:
    body = BASE.replace("data.jsonl", "missing.jsonl") + textwrap.dedent(
        """\
        scorers:
          - includes: {target: "{{ q }}"}
          - exact_match:
              target: "{{ q }}"
              normalise: true
          - exact_mtch: {target: x}
        """
    )
    err = load_error(tmp_path, body)
    assert len(err.errors) == 3
    assert err.errors[0].startswith("dataset.path (line 2): file not found")
    assert err.errors[1] == (
        "scorers[1].normalise (line 10): unknown option\n    hint: did you mean `normalize`?"
    )
    assert err.errors[2].startswith("scorers[2] (line 11): unknown scorer 'exact_mtch'")
    assert "did you mean `exact_match`?" in err.errors[2]


def test_missing_rubric_and_schema_files_are_named_by_absolute_path(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE + SCORERS)
    assert err.errors == [
        f"scorers[1].rubric_file (line 10): file not found: {tmp_path / 'rubrics/judge.j2'}",
        f"scorers[2].schema_file (line 11): file not found: {tmp_path / 'schemas/answer.json'}",
    ]


def test_a_snapshot_resolves_scorer_paths_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchmark.scorers import ScoreContext

    config = write(tmp_path / "evals", BASE, SCORER_FILES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_config(config, text=BASE + SCORERS)
    judge = spec.build_scorers()[1]
    ctx = ScoreContext(
        row={"id": "1", "q": "hi"},
        row_id="1",
        variant="plain",
        model_key="claude-haiku-4-5",
        epoch=0,
        request={},
        response={"status": "succeeded", "text": "hello"},
    )
    request = judge.build_request(ctx)
    assert request["messages"][0]["content"] == "Question: hi\nResponse: hello"


def test_spec_hash_covers_scorer_files(tmp_path: Path) -> None:
    config = write(tmp_path, BASE + SCORERS, SCORER_FILES)
    first = load_config(config).hash
    (tmp_path / "schemas" / "answer.json").write_text('{"type": "array"}')
    second = load_config(config).hash
    (tmp_path / "rubrics" / "judge.j2").write_text("{{ response }}")
    assert len({first, second, load_config(config).hash}) == 3


def test_json_schema_describes_scorers() -> None:
    schema = config_json_schema()
    scorers = schema["properties"]["scorers"]
    assert scorers["type"] == "array" and "docs/scorers.md" in scorers["description"]
    prompts = [{"name": "p", "user": "hi"}]
    base = {"name": "t", "dataset": {"path": "d.jsonl"}, "prompts": prompts, "models": ["m"]}
    good = [{"exact_match": {"target": "{{ a }}"}}, {"judge": {"model": "m", "rubric": "r"}}]
    jsonschema.validate({**base, "scorers": good}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**base, "scorers": [{"exact_match": {"bogus": 1}}]}, schema)


def test_quickstart_judge_is_answered_by_its_scripted_responder() -> None:
    from batchmark.emulator import parse_responder
    from batchmark.scorers import VERDICT_TOOL, ScoreContext

    spec = load_config(REPO / "configs" / "quickstart.yaml")
    [judge] = [s for s in spec.build_scorers() if s.name == "judge"]
    responder = parse_responder(spec.emulator.responder, base_dir=spec.base_dir)
    row = {"id": "ocean", "question": "What is the largest ocean?", "answer": "Pacific Ocean"}
    grades = []
    for text in ["Pacific Ocean", "The Pacific Ocean is the largest.", "Atlantic"]:
        ctx = ScoreContext(
            row=row,
            row_id="ocean",
            variant="plain",
            model_key="claude-haiku-4-5",
            epoch=0,
            request={},
            response={"status": "succeeded", "text": text},
        )
        [block] = responder(judge.build_request(ctx)).content
        assert block["type"] == "tool_use" and block["name"] == VERDICT_TOOL
        score = judge.parse(ctx, {"status": "succeeded", "tool_calls": [block]})
        assert not score.invalid
        grades.append(score.answer)
    assert grades == ["A", "B", "C"]


# --- ci: gates ------------------------------------------------------------------------

CI_BASE = (
    BASE
    + """\
scorers:
  - exact_match: {target: "{{ q }}"}
  - includes: {target: "{{ q }}", name: contains}
"""
)


def test_ci_section_defaults_to_no_gates_and_no_failed_requests(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, BASE))
    assert spec.ci.gate_list() == []
    assert spec.ci.max_failed_fraction == 0.0


def test_ci_gates_take_one_mapping_or_a_list_per_scorer(tmp_path: Path) -> None:
    spec = load_config(
        write(
            tmp_path,
            CI_BASE
            + """\
            ci:
              max_failed_fraction: 0.01
              gates:
                exact_match: {min: 0.8, max_drop: 0.02, significant_drop: true}
                contains:
                  - {significant_drop: 0.05}
                  - {min: 1, model: claude-haiku-4-5, variant: plain}
            """.replace("            ", ""),
        )
    )
    gates = spec.ci.gate_list()
    assert [(s, g.min, g.max_drop, g.tolerance) for s, g in gates] == [
        ("exact_match", 0.8, 0.02, 0.0),
        ("contains", None, None, 0.05),
        ("contains", 1.0, None, None),
    ]
    assert (gates[2][1].model, gates[2][1].variant) == ("claude-haiku-4-5", "plain")
    assert spec.ci.max_failed_fraction == 0.01


def test_ci_gate_naming_an_unknown_scorer_is_an_error_with_its_path(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        CI_BASE + "ci:\n  gates:\n    exact_mach: {min: 0.5}\n    judge: {min: 0.5}\n",
    )
    text = str(err)
    assert "ci.gates.exact_mach (line 11): no scorer named 'exact_mach'" in text
    assert "did you mean `exact_match`?" in text
    assert "ci.gates.judge (line 12): no scorer named 'judge'" in text


def test_ci_gate_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        CI_BASE
        + "ci:\n  max_failed_fraction: 1.5\n  gates:\n"
        + "    exact_match:\n      - {model: gpt}\n      - {min: 0.5, variant: fancy}\n"
        + "    contains: {max_drop: -0.1, significant_drop: -1.0}\n",
    )
    text = str(err)
    assert "ci.max_failed_fraction (line 10)" in text
    assert "ci.gates.exact_match[0] (line 13): a gate needs at least one of" in text
    assert "ci.gates.exact_match[1].variant (line 14): no prompt variant named 'fancy'" in text
    assert "ci.gates.contains[0].max_drop" in text
    assert "the tolerance must be >= 0" in text


def test_ci_section_is_in_the_json_schema() -> None:
    schema = config_json_schema()
    assert "ci" in schema["properties"]
    gate = schema["$defs"]["Gate"]["properties"]
    assert {"min", "max_drop", "significant_drop", "model", "variant"} <= set(gate)
    assert all(p.get("description") for p in gate.values())


def test_ci_gates_in_the_json_schema_accept_one_gate_or_a_list() -> None:
    schema = config_json_schema()
    doc = {
        "name": "t",
        "dataset": {"path": "d.jsonl"},
        "prompts": [{"name": "p", "user": "x"}],
        "models": ["m"],
        "ci": {"gates": {"a": {"min": 0.5}, "b": [{"max_drop": 0.1}]}},
    }
    jsonschema.validate(doc, schema)
    doc["ci"]["gates"]["a"] = {"min": 0.5, "typo": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
