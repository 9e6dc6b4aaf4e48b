"""The README cannot drift: its examples run, its commands are the ones CI runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest
import yaml

from batchmark.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = next(b.strip() for b in _blocks("sh") if "pytest" in b)
    assert test_command in ci_lines


def test_readme_main_job_runs_the_quickstart_offline() -> None:
    main_job = _blocks("sh")[0].strip()
    assert main_job.endswith("batchmark run configs/quickstart.yaml --emulate")
    assert (ROOT / "configs" / "quickstart.yaml").is_file()


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    monkeypatch.chdir(tmp_path)
    example = next(b for b in _blocks("python") if "import batchmark" in b)

    exec(compile(example, "README.md", "exec"), {})

    assert list((tmp_path / "results" / "quickstart").iterdir())


@pytest.mark.parametrize("name", cli.list_commands(click.Context(cli)))
def test_every_command_is_in_the_cli_reference(name: str) -> None:
    assert f"`batchmark {name}" in README


def test_readme_complete_config_example_loads(tmp_path: Path) -> None:
    from batchmark import load_config

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    section = README.split("### A complete example", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1)
    path = tmp_path / "configs" / "example.yaml"
    path.write_text(example)

    spec = load_config(path)

    written = yaml.safe_load(example)
    assert spec.name == written["name"]
    # each scorer of the example is built, under its kind's name, in order
    kinds = [next(iter(scorer)) for scorer in written["scorers"]]
    assert [s.name for s in spec.build_scorers()] == kinds and len(kinds) >= 2


def test_readme_complete_config_example_passes_the_api_rules(tmp_path: Path) -> None:
    from batchmark import load_config
    from batchmark.runs._grid import validate_spec

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    section = README.split("### A complete example", 1)[1]
    path = tmp_path / "configs" / "example.yaml"
    example = re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1)
    path.write_text(example)

    report = validate_spec(load_config(path))  # raises on a request the API would refuse

    assert report.requests > 0 and report.warnings == ()


def test_ci_docs_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    monkeypatch.chdir(tmp_path)
    docs = (ROOT / "docs" / "ci.md").read_text()
    example = re.findall(r"```python\n(.*?)```", docs, flags=re.S)[-1]

    exec(compile(example, "docs/ci.md", "exec"), {})

    assert (tmp_path / "junit.xml").is_file()


def test_readme_catalog_example_adds_a_model_that_validates(tmp_path: Path) -> None:
    """The `catalog:` example: a model this version does not know, added in the config,
    is accepted by the request rules and priced by its entry."""
    from batchmark import load_config
    from batchmark.runs._grid import validate_spec

    section = README.split("#### `catalog`", 1)[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1))
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    config = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    config.update(example)
    path = tmp_path / "configs" / "added.yaml"
    path.write_text(yaml.safe_dump(config))

    spec = load_config(path)
    validate_spec(spec)  # raises on a request the rules refuse

    [model] = example["models"]
    assert spec.model_catalog().get(model).price.input == 3
