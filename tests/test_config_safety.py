"""Hostile configs and data (issue 13, items 5, 7 and 8).

- A null or missing field is undefined, never the text ``None``: validate and run refuse
  the row (``dataset.null_as_empty: true`` renders it as an empty string instead).
- Config templates run in Jinja's sandbox; ``python:`` scorers and responders load only
  from files inside the config's repository unless ``--allow-external-code`` is given.
- A YAML alias bomb or an oversized config is refused at once, naming the limit.

Every attack writes a marker file if it gets to run code; each test asserts it did not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import batchmark
import batchmark.cli._validate  # noqa: F401  (registers the commands on ``cli``)
from batchmark import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def write(folder: Path, config: str, rows: list[dict] | None = None) -> Path:
    """A config (``eval.yaml``) and its dataset (``d.jsonl``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else [{"id": "r1", "q": "hi"}]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = folder / "eval.yaml"
    path.write_text(textwrap.dedent(config))
    return path


def config(user: str = "{{ q }}", extra: str = "", dataset: str = "") -> str:
    return (
        "name: t\n"
        f"dataset: {{path: d.jsonl, id_field: id{dataset}}}\n"
        f"prompts: [{{name: p, user: {json.dumps(user)}}}]\n"
        "models: [claude-haiku-4-5]\n" + extra
    )


def batchmark_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (the test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=timeout,
    )


# --- 8. alias bombs and oversized configs --------------------------------------------

BOMB = """\
name: bomb
dataset: {path: d.jsonl, id_field: id}
prompts: [{name: p, user: "{{ q }}"}]
models: [claude-haiku-4-5]
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BOMB)
    result = batchmark_cli("validate", str(path), timeout=20)  # before: over 60 s
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}: ")
    assert "more than 100,000 nodes once its aliases are expanded" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, config() + "description: &loop [*loop]\n")
    with pytest.raises(ConfigError, match="recursive"):
        load_config(path)


def test_an_oversized_config_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, config() + "# " + "x" * 5_000_000 + "\n")
    with pytest.raises(ConfigError, match=r"the config file is 5\.0 MB, over the 4\.0 MB limit"):
        load_config(path)


def test_ordinary_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    body = "params: &p {max_tokens: 5}\n" + config()
    body = body.replace("[claude-haiku-4-5]", "[{model: a, params: *p}, {model: b, params: *p}]")
    spec = load_config(write(tmp_path, body))
    assert [m.params.max_tokens for m in spec.models] == [5, 5]
