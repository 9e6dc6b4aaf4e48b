"""Conversations from the data, end to end: a row field holding a chat is spliced into a
variant's messages (between templated ones), sent through the real SDK to the emulator,
and every malformed conversation is an error naming the file, row, field and position,
with nothing sent."""

from __future__ import annotations

import base64
import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import batchmark
from batchmark._errors import DatasetError, RenderError

from ..media import png
from .support import write_config

# Answers with what it was sent: each message's role and content, as JSON.
RESPONDER = """
import json

def transcript(params):
    return json.dumps([[m["role"], m["content"]] for m in params["messages"]])
"""
CHAT = [
    {"role": "user", "content": "My name is Ada."},
    {"role": "assistant", "content": "Hello Ada."},
    {"role": "user", "content": "What is my name?"},
]
BLOCKS = [
    {"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"e": "2+2"}}],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4"},
            {"type": "text", "text": "So?", "cache_control": {"type": "ephemeral"}},
        ],
    },
]
ROWS = [{"id": "c1", "chat": CHAT, "name": "Ada"}, {"id": "c2", "chat": BLOCKS, "name": "Bo"}]


def _config(folder: Path, rows: list, prompts: list | None = None) -> Path:
    config = write_config(
        folder,
        rows=rows,
        prompts=prompts or [{"name": "chat", "messages": [{"field": "chat"}]}],
        models=["claude-haiku-4-5"],
        emulator={"responder": "python:echoes.py:transcript"},
        params={"max_tokens": 2048},  # the whole transcript comes back
    )
    (folder / "echoes.py").write_text(RESPONDER)
    return config


def _sent(run: batchmark.Run) -> dict[str, list]:
    return {r["row_id"]: json.loads(r["text"]) for r in run.responses()}


def test_a_system_message_in_a_conversation_is_sent(tmp_path: Path) -> None:
    """The SDK's MessageParam takes system messages of text (SystemMessageParam)."""
    chat = [{"role": "system", "content": "Be brief."}, *CHAT]
    run = batchmark.run(
        _config(tmp_path / "cfg", [{"id": "s1", "chat": chat}]),
        results=tmp_path / "r",
        emulate=True,
    )
    assert _sent(run)["s1"][0] == ["system", "Be brief."]


def test_a_rows_conversation_is_sent_as_its_messages(tmp_path: Path) -> None:
    run = batchmark.run(_config(tmp_path / "cfg", ROWS), results=tmp_path / "r", emulate=True)
    assert run.status.done == 2
    sent = _sent(run)
    assert sent["c1"] == [[m["role"], m["content"]] for m in CHAT]
    assert sent["c2"] == [[m["role"], m["content"]] for m in BLOCKS]


def test_templated_messages_go_before_and_after_the_conversation(tmp_path: Path) -> None:
    prompts = [
        {
            "name": "framed",
            "system": "You talk to {{ name }}.",
            "messages": [
                {"role": "user", "content": "Remember: the user is {{ name }}."},
                {"role": "assistant", "content": "Understood."},
                {"field": "chat"},
                {"role": "user", "content": "Answer in one word."},
            ],
        }
    ]
    config = _config(tmp_path / "cfg", ROWS[:1], prompts)
    run = batchmark.run(config, results=tmp_path / "r", emulate=True)
    assert _sent(run)["c1"] == [
        ["user", "Remember: the user is Ada."],
        ["assistant", "Understood."],
        *[[m["role"], m["content"]] for m in CHAT],
        ["user", "Answer in one word."],
    ]


def test_null_keys_a_parquet_struct_gives_every_block_are_not_sent(tmp_path: Path) -> None:
    """Parquet holds a column of objects as one struct type: every block carries every
    key seen in the column (a tool_use block gets ``text: null``); the API takes absent
    keys, not nulls."""
    folder = tmp_path / "cfg"
    config = _config(folder, ROWS)
    pq.write_table(pa.Table.from_pylist([{"id": "c2", "chat": BLOCKS}]), folder / "data.parquet")
    raw = yaml.safe_load(config.read_text())
    raw["dataset"]["path"] = "data.parquet"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = batchmark.run(config, results=tmp_path / "r", emulate=True)
    sent = _sent(run)["c2"]
    assert sent == [[m["role"], m["content"]] for m in BLOCKS]
    assert "null" not in json.dumps(sent)


def test_a_csv_cell_may_hold_the_conversation_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    config = _config(folder, ROWS[:1])
    with open(folder / "data.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "chat"])
        writer.writerow(["c1", json.dumps(CHAT)])
    raw = yaml.safe_load(config.read_text())
    raw["dataset"]["path"] = "data.csv"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = batchmark.run(config, results=tmp_path / "r", emulate=True)
    assert _sent(run)["c1"] == [[m["role"], m["content"]] for m in CHAT]


TEXT = {"type": "text", "text": "What is this?"}
BAD = [
    ([{"role": "robot", "content": "Beep."}], "message 0 has role 'robot'", "user|assistant"),
    (
        [{"role": "system", "content": [{"type": "image", "path": "x.png"}]}],
        "message 0 block 0 is a image block in a system message",
        "text only",
    ),
    ([{"role": "user", "content": "  "}], "message 0 (user) has empty content", "empty"),
    (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": []}],
        "message 1 (assistant) has an empty list of blocks",
        "",
    ),
    (
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
        "message 0 block 0 is a text block without text",
        "empty text",
    ),
    ([{"role": "user", "content": "hi", "name": "x"}], "keys the API does not take: name", ""),
    ([{"role": "user"}], "message 0 (user) content should be text or a list of blocks", ""),
    ("[not json", "holds text that is not JSON", ""),
    ({"role": "user", "content": "hi"}, "should be a list of messages, not dict", ""),
    ([], "is an empty conversation", "at least one message"),
    (None, "is null or absent in this row", "every row needs a conversation"),
    (
        [{"role": "user", "content": [{"type": "bogus", "text": "hi"}]}],
        "message 0 block 0 has type 'bogus', which the API does not take",
        "text, image, document",
    ),
    (
        [{"role": "user", "content": [{"type": "image", "source": None}, TEXT]}],
        "message 0 block 0 (image) lacks source",
        "",
    ),
    (
        [{"role": "assistant", "content": [{"type": "tool_use", "name": "calc", "input": {}}]}],
        "message 0 block 0 (tool_use) lacks id",
        "",
    ),
    (
        [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]}],
        "message 0 has a tool_result for toolu_9, which the message before it did not call",
        "each tool_result answers a tool_use of the assistant message just before it",
    ),
    (
        [BLOCKS[0], BLOCKS[1], {"role": "user", "content": "And then?"}],
        "message 1 calls toolu_1, but the next message has no tool_result for it",
        "each tool_use needs a tool_result in the next (user) message",
    ),
    (
        [
            BLOCKS[0],
            BLOCKS[1],
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2"}]},
        ],
        "message 2 has a tool_result for toolu_2, which the message before it did not call",
        "",
    ),
]


@pytest.mark.parametrize(("chat", "detail", "hint"), BAD)
def test_a_malformed_conversation_names_the_row_field_and_position(
    tmp_path: Path, chat: object, detail: str, hint: str
) -> None:
    rows = [{"id": "good", "chat": CHAT}, {"id": "bad", "chat": chat}]
    config = _config(tmp_path / "cfg", rows)
    with pytest.raises(RenderError) as caught:
        batchmark.run(config, results=tmp_path / "r", emulate=True)
    message = str(caught.value)
    assert "row 'bad'" in message and "field 'chat'" in message and detail in message
    assert str(tmp_path / "cfg" / "data.jsonl") in message  # the file holding the row
    assert hint in (caught.value.hint or "")
    assert not list((tmp_path / "r").glob("*/*/ledger.sqlite"))  # nothing started, nothing sent


def test_validate_reports_a_malformed_conversation_and_exits_2(tmp_path: Path) -> None:
    rows = [{"id": "r1", "chat": [{"role": "robot", "content": "beep"}]}]
    config = _config(tmp_path / "cfg", rows)
    done = subprocess.run(
        [sys.executable, "-m", "batchmark", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "row 'r1'" in done.stderr and "message 0 has role 'robot'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_conversation_entry_with_other_keys_is_a_config_error(tmp_path: Path) -> None:
    prompts = [{"name": "chat", "messages": [{"field": "chat", "role": "user"}]}]
    config = _config(tmp_path / "cfg", ROWS, prompts)
    with pytest.raises(batchmark.ConfigError, match=r"prompts.*messages.*role"):
        batchmark.load_config(config)


def test_validate_checks_every_rows_conversation_against_the_models_rules(
    tmp_path: Path,
) -> None:
    """The request rules were checked once per (model, variant), on the first row: a
    later row whose conversation ends with an assistant turn (prefill, which Sonnet 4.6
    refuses) passed ``validate`` and was sent."""
    prefilled = [*CHAT, {"role": "assistant", "content": "Your name is"}]
    rows = [{"id": "fine", "chat": CHAT}, {"id": "prefilled", "chat": prefilled}]
    config = write_config(
        tmp_path / "cfg",
        rows=rows,
        prompts=[{"name": "chat", "messages": [{"field": "chat"}]}],
        models=["claude-sonnet-4-6"],
    )
    done = subprocess.run(
        [sys.executable, "-m", "batchmark", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "does not support assistant message prefill" in done.stderr
    assert "prompts[0].messages[0]" in done.stderr  # the conversation's entry
    assert "request chat" in done.stderr and "prefilled" in done.stderr  # one request, named
    assert "Traceback" not in done.stderr
    with pytest.raises(batchmark.ConfigError, match="prefill"):
        batchmark.run(config, results=tmp_path / "r", emulate=True)
    assert not list((tmp_path / "r").glob("*/*/ledger.sqlite"))


def test_two_conversation_entries_both_empty_is_an_error_not_a_request_without_messages(
    tmp_path: Path,
) -> None:
    """Each entry alone may be empty when the variant has other messages; when those
    are conversations too and every one is empty, the request had no message at all
    and was sent (an errored result) instead of refused."""
    prompts = [{"name": "two", "messages": [{"field": "chat"}, {"field": "more"}]}]
    rows = [
        {"id": "ok", "chat": CHAT, "more": []},
        {"id": "none", "chat": [], "more": []},
    ]
    config = _config(tmp_path / "cfg", rows, prompts)
    with pytest.raises(RenderError) as caught:
        batchmark.run(config, results=tmp_path / "r", emulate=True)
    message = str(caught.value)
    assert "row 'none'" in message and "'chat'" in message and "'more'" in message
    assert "at least one message" in (caught.value.hint or "")
    assert not list((tmp_path / "r").glob("*/*/ledger.sqlite"))


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_a_conversation_json_cannot_write_is_a_render_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    """A tool_use input nested 300 deep passed the checks and then stopped validate and
    run with orjson's TypeError (a traceback) when the request was serialized. Rows nested
    past 200 levels are now refused when the dataset is read, naming the file and line."""
    value, detail = _nested(300), "line 2 nests values deeper than 200 levels"
    chat = [
        BLOCKS[0],
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"e": value}}
            ],
        },
        BLOCKS[2],
    ]
    config = _config(tmp_path / "cfg", [{"id": "ok", "chat": CHAT}, {"id": "odd", "chat": chat}])
    done = subprocess.run(
        [sys.executable, "-m", "batchmark", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert detail in done.stderr
    assert str(tmp_path / "cfg" / "data.jsonl") in done.stderr
    with pytest.raises(DatasetError):
        batchmark.run(config, results=tmp_path / "r", emulate=True)
    assert not list((tmp_path / "r").glob("*/*/ledger.sqlite"))


def test_a_later_rows_conversation_with_too_many_breakpoints_is_refused(tmp_path: Path) -> None:
    """Blocks in the data may carry cache_control; a row with five of them (the API takes
    four) passed validate when another row came first (checked once per pair)."""
    blocks = [
        {"type": "text", "text": str(k), "cache_control": {"type": "ephemeral"}} for k in range(5)
    ]
    rows = [
        {"id": "plain", "chat": CHAT},
        {"id": "five", "chat": [{"role": "user", "content": blocks}]},
    ]
    config = _config(tmp_path / "cfg", rows)
    with pytest.raises(batchmark.ConfigError) as caught:
        batchmark.run(config, results=tmp_path / "r", emulate=True)
    assert "A maximum of 4 blocks with cache_control" in str(caught.value)
    assert "five" in str(caught.value) and "prompts[0].messages[0]" in str(caught.value)
    assert not list((tmp_path / "r").glob("*/*/ledger.sqlite"))


def test_an_image_block_spec_in_a_rows_conversation_is_read_and_sent(tmp_path: Path) -> None:
    """A conversation from the data may name an image file beside the dataset (a block
    spec, docs/content.md): it is read, checked and sent as a base64 image block."""
    folder = tmp_path / "cfg"
    chat = [
        {
            "role": "user",
            "content": [{"type": "image", "path": "red.png"}, {"type": "text", "text": "Colour?"}],
        }
    ]
    config = _config(folder, [{"id": "i1", "chat": chat}])
    image_bytes = png(2, 1)
    (folder / "red.png").write_bytes(image_bytes)
    run = batchmark.run(config, results=tmp_path / "r", emulate=True)
    (message,) = _sent(run)["i1"]
    image, text = message[1]
    assert image["type"] == "image" and image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == image_bytes
    assert text == {"type": "text", "text": "Colour?"}
