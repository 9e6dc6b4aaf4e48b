"""docs/scorers.md can't drift: its Python runs and its YAML examples build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchmark.scorers import build_scorers, register_scorer

DOC = Path(__file__).parents[2] / "docs" / "scorers.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_python_examples_run() -> None:
    namespace: dict[str, Any] = {}
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["scorers"][0].score(namespace["ctx"]).passed


def _prepare(items: list[Any], base: Path) -> None:
    """Create the files the examples name, and register the documented custom type."""
    python = blocks("python")
    for item in items:
        options = dict(item)
        for value in item.values():
            options.update(value if isinstance(value, dict) else {})
        for key, text in (("schema_file", "{}"), ("rubric_file", "{{ response }}")):
            if key in options:
                path = base / options[key]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        if str(options.get("python", "")).endswith(".py:brevity"):
            path = base / options["python"].split(":")[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(python[0])
    namespace: dict[str, Any] = {}
    for code in python[1:-1]:  # the classes: StartsWith, SecondOpinion, AllOf
        exec(code, namespace)
    register_scorer("starts_with", namespace["StartsWith"])
    register_scorer("second_opinion", namespace["SecondOpinion"])
    register_scorer("all_of", namespace["AllOf"])


@pytest.mark.parametrize("index", range(len(blocks("yaml"))))
def test_yaml_examples_build(index: int, tmp_path: Path) -> None:
    data = yaml.safe_load(blocks("yaml")[index])
    items = data["scorers"] if isinstance(data, dict) else data
    _prepare(items, tmp_path)
    scorers = build_scorers(items, base_dir=tmp_path)
    assert len(scorers) == len(items)
