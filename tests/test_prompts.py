from __future__ import annotations

from pathlib import Path

import pytest

from batchmark._errors import RenderError
from batchmark._templates import compile_variant, is_static, render
from batchmark.config._schema import PromptVariant
from batchmark.runs._datasets import Row

ROW = Row("r1", 0, {"question": "2+2?", "answer": "4"})


def variant(**fields) -> PromptVariant:
    return PromptVariant.model_validate({"name": "v", **fields})


def compiled(**fields):
    return compile_variant(variant(**fields), "/cfg/eval.yaml", index=0)


def test_renders_system_and_user_message() -> None:
    v = compiled(system="Be terse.", user="Q: {{ question }}")
    assert render(v, ROW) == ("Be terse.", [{"role": "user", "content": "Q: 2+2?"}])


def test_variant_without_system_renders_none() -> None:
    assert render(compiled(user="{{ question }}"), ROW)[0] is None


def test_messages_variant_renders_every_message_in_order() -> None:
    v = compiled(
        messages=[
            {"role": "user", "content": "1+1?"},
            {"role": "assistant", "content": "2"},
            {"role": "user", "content": "{{ question }}"},
        ]
    )
    assert render(v, ROW)[1] == [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
    ]


def test_row_and_row_id_are_template_variables() -> None:
    v = compiled(user="{{ row_id }}: {{ row.question }} {{ row['answer'] }}")
    assert render(v, ROW)[1][0]["content"] == "r1: 2+2? 4"


def test_template_file_is_rendered_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "u.j2"
    path.write_text("Q: {{ question }}\n")
    v = compile_variant(PromptVariant(name="v", user_file=str(path)), "/cfg/eval.yaml")
    assert render(v, ROW)[1][0]["content"] == "Q: 2+2?"


def test_missing_variable_names_variant_row_variable_and_field() -> None:
    v = compiled(system="s", user="{{ question }} {{ context }}")
    with pytest.raises(RenderError) as info:
        render(v, ROW)
    err = info.value
    assert (err.variant, err.row_id, err.file) == ("v", "r1", "/cfg/eval.yaml")
    assert "prompt variant 'v', row 'r1': prompts[0].user line 1: undefined variable 'context'" in (
        str(err)
    )
    assert "available for this row: answer, question, row, row_id" in str(err)


def test_missing_variable_in_a_template_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "u.j2"
    path.write_text("Question:\n{{ question }}\n{{ missing }}\n")
    v = compile_variant(PromptVariant(name="v", user_file=str(path)), "/cfg/eval.yaml")
    with pytest.raises(RenderError) as info:
        render(v, ROW)
    assert info.value.file == str(path)
    assert f"{path} line 3: undefined variable 'missing'" in str(info.value)


def test_missing_attribute_of_a_row_field_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="has no attribute 'nope'"):
        render(compiled(user="{{ row.nope }}"), ROW)


def test_message_rendering_to_whitespace_is_refused() -> None:
    v = compiled(user="{{ blank }}")
    with pytest.raises(RenderError, match="rendered to an empty string"):
        render(v, Row("r2", 1, {"blank": "  "}))


def test_static_system_prompt_is_static() -> None:
    assert is_static(compiled(system="Be terse. {% for i in range(2) %}!{% endfor %}", user="x"))


def test_system_prompt_reading_a_row_variable_is_not_static() -> None:
    assert not is_static(compiled(system="Topic: {{ answer }}", user="x"))
    assert not is_static(compiled(system="{{ row_id }}", user="x"))


def test_variant_without_system_prompt_has_nothing_static_to_cache() -> None:
    assert not is_static(compiled(user="x"))


def test_is_static_for_messages() -> None:
    assert is_static(compiled(user="fixed"), "messages")
    assert not is_static(compiled(user="{{ question }}"), "messages")


def test_rendering_is_deterministic_without_random_helpers() -> None:
    v = compiled(user="{{ question }}{{ [1, 2, 3] | join(',') }}")
    assert render(v, ROW) == render(v, ROW)
