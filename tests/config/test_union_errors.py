"""Config errors on union-typed fields read as one sentence, not one per union member
(issue 17: "review every config error for such union noise")."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchmark import ConfigError, load_config

BASE = """\
name: t
dataset: {path: d.jsonl, id_field: id}
models: [claude-haiku-4-5]
"""


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        (
            "[{name: p, messages: [{role: user, content: 5}]}]",
            "prompts[0].messages[0].content (line 4): expected a template string or a list "
            "of content blocks (got 5)",
        ),
        ("[{name: p, messages: [7]}]", "prompts[0].messages[0] (line 4): Input should be a"),
    ],
)
def test_a_bad_message_entry_is_one_clear_error(tmp_path: Path, prompts: str, expected: str):
    (tmp_path / "d.jsonl").write_text('{"id": "a", "q": "hi"}\n')
    config = tmp_path / "e.yaml"
    config.write_text(BASE + f"prompts: {prompts}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert expected in message
    assert "discriminator" not in message and "problems" not in message
