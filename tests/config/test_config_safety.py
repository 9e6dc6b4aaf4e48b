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
from click.testing import CliRunner

import batchmark
import batchmark.cli._validate  # noqa: F401  (registers the commands on ``cli``)
from batchmark import ConfigError, RenderError, UnsafeConfig, load_config
from batchmark.cli import cli
from batchmark.runs._grid import validate_spec

REPO = Path(__file__).resolve().parents[2]


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


# --- 5. null and missing values -----------------------------------------------------

NULL_ROWS = [{"id": "r1", "q": "hi", "hint": "h"}, {"id": "r2", "q": None, "hint": "h"}]


def test_a_null_field_is_a_render_error_naming_variant_row_variable_and_option(
    tmp_path: Path,
) -> None:
    spec = load_config(write(tmp_path, config("Q: {{ q }}"), NULL_ROWS))
    with pytest.raises(RenderError) as info:
        validate_spec(spec)
    err = info.value
    assert (err.variant, err.row_id) == ("p", "r2")
    assert "prompts[0].user line 1: variable 'q' is null or absent in this row" in str(err)
    assert "dataset.null_as_empty: true" in str(err)


def test_a_field_absent_from_one_row_is_a_render_error(tmp_path: Path) -> None:
    rows = [{"id": "r1", "q": "hi"}, {"id": "r2"}]
    spec = load_config(write(tmp_path, config("{{ q }}"), rows))
    with pytest.raises(RenderError, match="row 'r2'.*variable 'q' is null or absent"):
        validate_spec(spec)


def test_a_null_read_through_row_is_a_render_error(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, config("{{ row['q'] }} / {{ row.hint }}"), NULL_ROWS))
    with pytest.raises(RenderError, match=r"row 'r2'.*row\['q'\] is null or absent"):
        validate_spec(spec)


def test_validate_refuses_a_null_field_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, config("{{ q }}"), NULL_ROWS)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "prompt variant 'p', row 'r2'" in result.stderr
    assert "variable 'q' is null or absent" in result.stderr
    assert "Traceback" not in result.output and "None" not in result.output


def test_run_refuses_a_null_field_before_creating_a_run(tmp_path: Path) -> None:
    path = write(tmp_path, config("{{ q }}"), NULL_ROWS)
    results = tmp_path / "results"
    with pytest.raises(RenderError, match="row 'r2'"):
        batchmark.run(path, emulate=True, results=results)
    assert not [p for p in results.glob("*/*") if p.parent.name != ".cache"]


def test_null_as_empty_renders_null_and_missing_values_as_empty_strings(tmp_path: Path) -> None:
    rows = [*NULL_ROWS, {"id": "r3", "hint": "h"}]
    path = write(tmp_path, config("Q:{{ q }}|{{ row.q }}", dataset=", null_as_empty: true"), rows)
    spec = load_config(path)
    assert spec.dataset.null_as_empty is True
    texts = {r.row_id: r.params["messages"][0]["content"] for r in batchmark_expand(spec)}
    assert texts == {"r1": "Q:hi|hi", "r2": "Q:|", "r3": "Q:|"}


def test_a_null_value_is_undefined_so_templates_can_test_for_it(tmp_path: Path) -> None:
    user = "{{ hint }}{% if q is defined %}: {{ q }}{% endif %} [{{ q | default('none') }}]"
    spec = load_config(write(tmp_path, config(user), NULL_ROWS))
    texts = {r.row_id: r.params["messages"][0]["content"] for r in batchmark_expand(spec)}
    assert texts == {"r1": "h: hi [hi]", "r2": "h [none]"}


def batchmark_expand(spec: batchmark.EvalSpec) -> list:
    from batchmark.runs._grid import expand

    return list(expand(spec))


# --- 7. configs are code: the sandbox ------------------------------------------------

ESCAPES = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
    "{% if c.__name__ == 'Popen' %}{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch MARKER') }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
@pytest.mark.parametrize("row_variable", [False, True], ids=["static", "per-row"])
def test_a_prompt_template_cannot_reach_python_internals(
    tmp_path: Path, payload: str, row_variable: bool
) -> None:
    marker = tmp_path / "MARKER"
    payload = payload.replace("MARKER", str(marker))
    user = ("{{ q }} " if row_variable else "") + payload
    path = write(tmp_path, config(user))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "unsafe" in result.stderr
    assert "Traceback" not in result.output
    assert not marker.exists()


@pytest.mark.parametrize(
    "scorer",
    [
        {"exact_match": {"target": "PAYLOAD"}},
        {"judge": {"model": "claude-haiku-4-5", "rubric": "{{ response }} PAYLOAD"}},
        {
            "judge": {
                "model": "claude-haiku-4-5",
                "rubric": "{{ response }}",
                "reference": "PAYLOAD",
            }
        },
    ],
    ids=["exact_match-target", "judge-rubric", "judge-reference"],
)
def test_a_scorer_template_cannot_reach_python_internals(tmp_path: Path, scorer: dict) -> None:
    from batchmark.scorers import ScoreContext

    marker = tmp_path / "MARKER"
    payload = ESCAPES[0].replace("MARKER", str(marker))
    item = json.dumps(scorer).replace("PAYLOAD", payload)
    path = write(tmp_path, config(extra=f"scorers:\n  - {item}\n"))
    try:
        spec = load_config(path)
    except ConfigError as err:  # a template that reads no row variable fails at load
        assert "unsafe" in str(err)
    else:
        response = {"status": "succeeded", "text": "x"}
        ctx = ScoreContext(
            row={"q": "hi"},
            row_id="r1",
            variant="p",
            model_key="m",
            epoch=0,
            request={},
            response=response,
        )
        [judge] = spec.build_scorers()
        with pytest.raises(ConfigError, match="unsafe"):
            judge.build_request(ctx)  # type: ignore[attr-defined]
    assert not marker.exists()


def test_a_template_cannot_change_the_row_it_renders(tmp_path: Path) -> None:
    user = "{{ row.update({'q': 'changed'}) }}{{ q }}"
    spec = load_config(write(tmp_path, config(user)))
    with pytest.raises(RenderError, match="unsafe"):
        validate_spec(spec)


def test_a_template_cannot_build_a_huge_string(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, config("{{ q * 1000000000 }}")))
    with pytest.raises(RenderError, match="too large"):
        validate_spec(spec)


def test_ordinary_templates_still_render_in_the_sandbox(tmp_path: Path) -> None:
    user = (
        "{% set items = q.split(',') %}{{ items | join(' / ') | upper }} "
        "{{ '%s-%d' | format(row_id, 2 ** 3) }} {{ row['q'] * 2 }} {{ range(3) | list }}"
    )
    spec = load_config(write(tmp_path, config(user), [{"id": "r1", "q": "a,b"}]))
    [request] = batchmark_expand(spec)
    assert request.params["messages"][0]["content"] == "A / B r1-8 a,ba,b [0, 1, 2]"


# --- 7. configs are code: python: hooks ----------------------------------------------

SCORER_FILE = """\
import subprocess
from subprocess import Popen


def polite(ctx):
    return "please" in ctx.text


class Shouty:
    def __init__(self, name="shouty"):
        self.name = name

    def score(self, ctx):
        return ctx.text.isupper()


respond = lambda params: "ok"  # noqa: E731
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git checkout (a ``.git`` folder is all it takes) with its config in ``evals/``."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "hooks").mkdir()
    (root / "hooks" / "scoring.py").write_text(SCORER_FILE)
    return root


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module and a file outside the repository."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "bm_outside_hooks.py").write_text(SCORER_FILE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "bm_outside_hooks", raising=False)
    return folder


def scorer_config(reference: str) -> str:
    return config(extra=f"scorers:\n  - {{python: {json.dumps(reference)}, name: hook}}\n")


def responder_config(spec: str) -> str:
    return config(extra=f"emulator:\n  responder: {json.dumps(spec)}\n")


@pytest.mark.parametrize(
    "reference",
    [
        "os:system",
        "subprocess:run",
        "builtins:eval",
        "bm_outside_hooks:polite",  # an importable module outside the repository
        "../../elsewhere/bm_outside_hooks.py:polite",  # a file outside it
        "../hooks/scoring.py:subprocess.run",  # a module the file imports
        "../hooks/scoring.py:Popen",  # a name the file imports
        "../hooks/scoring.py:Shouty.__init__.__globals__",
    ],
)
def test_python_scorers_from_outside_the_repository_are_refused(
    repo: Path, outside: Path, reference: str
) -> None:
    path = write(repo / "evals", scorer_config(reference))
    with pytest.raises(UnsafeConfig) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: scorers[0].python (line 6): ")
    assert repr(reference) in message or f"`{reference}`" in message
    assert "--allow-external-code" in message
    assert "bm_outside_hooks" not in sys.modules


@pytest.mark.parametrize(
    "reference",
    ["../hooks/scoring.py:polite", "../hooks/scoring.py:Shouty", "hooks.scoring:polite"],
)
def test_python_scorers_from_inside_the_repository_load(
    repo: Path, reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(repo))  # `hooks.scoring` is importable from the checkout
    monkeypatch.delitem(sys.modules, "hooks", raising=False)
    monkeypatch.delitem(sys.modules, "hooks.scoring", raising=False)
    path = write(repo / "evals", scorer_config(reference))
    [scorer] = load_config(path).build_scorers()
    assert scorer.name == "hook"


def test_without_git_the_config_folder_is_the_repository(tmp_path: Path) -> None:
    (tmp_path / "scoring.py").write_text(SCORER_FILE)
    inside = write(tmp_path / "a", scorer_config("scoring.py:polite"))
    (tmp_path / "a" / "scoring.py").write_text(SCORER_FILE)
    assert load_config(inside).build_scorers()[0].name == "hook"
    above = write(tmp_path / "b", scorer_config("../scoring.py:polite"))
    with pytest.raises(UnsafeConfig, match="outside"):
        load_config(above)


def test_a_symlink_out_of_the_repository_is_refused(repo: Path, outside: Path) -> None:
    (repo / "hooks" / "linked.py").symlink_to(outside / "bm_outside_hooks.py")
    path = write(repo / "evals", scorer_config("../hooks/linked.py:polite"))
    with pytest.raises(UnsafeConfig, match="outside"):
        load_config(path)


def test_allow_external_code_loads_them(repo: Path, outside: Path) -> None:
    path = write(repo / "evals", scorer_config("bm_outside_hooks:polite"))
    [scorer] = load_config(path, allow_external_code=True).build_scorers()
    assert scorer.name == "hook"


def test_entry_point_plugins_are_allowed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchmark.scorers import _registry

    _registry._ensure_builtins()
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))  # ours to restore
    site = tmp_path / "site"
    info = site / "bm_safety_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "bm_safety_plugin.py").write_text("def loud(ctx):\n    return ctx.text.isupper()\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bm-safety-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[batchmark.scorers]\nloud = bm_safety_plugin:loud\n")
    monkeypatch.syspath_prepend(str(site))
    path = write(repo / "evals", config(extra="scorers: [loud]\n"))
    assert [s.name for s in load_config(path).build_scorers()] == ["loud"]


@pytest.mark.parametrize(
    "spec",
    [
        "python:os:system",
        "python:bm_outside_hooks:respond",
        "python:../../elsewhere/bm_outside_hooks.py:respond",
        "python:../hooks/scoring.py:Popen",
    ],
)
def test_python_responders_from_outside_the_repository_are_refused(
    repo: Path, outside: Path, spec: str
) -> None:
    path = write(repo / "evals", responder_config(spec))
    with pytest.raises(UnsafeConfig) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: emulator.responder (line 6): ")
    assert "--allow-external-code" in str(info.value)
    assert load_config(path, allow_external_code=True).emulator.responder


def test_a_responder_map_naming_outside_code_is_refused(repo: Path) -> None:
    (repo / "evals").mkdir()
    (repo / "evals" / "models.yaml").write_text(
        '"claude-*": "python:../hooks/scoring.py:respond"\n"*": "python:os:system"\n'
    )
    path = write(repo / "evals", config(extra="emulator: {responder: {'*': models.yaml}}\n"))
    with pytest.raises(
        UnsafeConfig, match=r"(?s)emulator\.responder\['\*'\].*models\.yaml.*os:system"
    ):
        load_config(path)


def test_python_responders_from_inside_the_repository_load(repo: Path) -> None:
    path = write(repo / "evals", responder_config("python:../hooks/scoring.py:respond"))
    spec = load_config(path)
    assert spec.emulator.responder == f"python:{repo / 'hooks' / 'scoring.py'}:respond"


def test_validate_refuses_outside_code_and_runs_none_of_it(repo: Path) -> None:
    marker = repo.parent / "MARKER"
    extra = f"scorers:\n  - {{python: 'os:system', command: 'touch {marker}'}}\n"
    path = write(repo / "evals", config(extra=extra))
    result = batchmark_cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}: scorers[0].python (line 6): `os:system`")
    assert "--allow-external-code" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_run_refuses_outside_code_before_creating_a_run(repo: Path) -> None:
    path = write(repo / "evals", responder_config("python:os:system"))
    results = repo.parent / "results"
    result = batchmark_cli("run", str(path), "--emulate", "--results", str(results))
    assert result.returncode == 2, result.stderr
    assert "emulator.responder" in result.stderr and "--allow-external-code" in result.stderr
    assert not results.exists()


CONFIG_COMMANDS = ["validate", "estimate", "run", "resume", "score", "ci"]


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_every_command_that_loads_a_config_takes_allow_external_code(command: str) -> None:
    import batchmark.cli._ci  # noqa: F401
    import batchmark.cli._estimate  # noqa: F401
    import batchmark.cli._run  # noqa: F401
    import batchmark.cli._score  # noqa: F401

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--allow-external-code" in result.output


def test_the_flag_lets_validate_run_and_score_use_outside_code(
    repo: Path, outside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = (
        "emulator: {responder: 'python:bm_outside_hooks:respond'}\n"
        "scorers:\n  - {python: 'bm_outside_hooks:polite', name: hook}\n"
    )
    path = write(repo / "evals", config(extra=extra))
    results = str(tmp_path / "results")
    pythonpath = [str(outside), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))  # for the subprocesses
    assert batchmark_cli("validate", str(path)).returncode == 2
    ok = batchmark_cli("validate", str(path), "--allow-external-code")
    assert ok.returncode == 0, ok.stderr
    ran = batchmark_cli(
        "run", str(path), "--emulate", "-q", "--results", results, "--allow-external-code"
    )
    assert ran.returncode == 0, ran.stderr
    [run_dir] = Path(results).glob("t/*")
    refused = batchmark_cli("score", run_dir.name, "--results", results)
    assert refused.returncode == 2 and "--allow-external-code" in refused.stderr
    scored = batchmark_cli("score", run_dir.name, "--results", results, "--allow-external-code")
    assert scored.returncode == 0, scored.stderr
    assert "hook" in scored.stdout


def test_a_run_opened_with_allow_external_code_trusts_its_snapshot(
    repo: Path, outside: Path, tmp_path: Path
) -> None:
    path = write(repo / "evals", scorer_config("bm_outside_hooks:polite"))
    spec = load_config(path, allow_external_code=True)
    handle = batchmark.run(spec, emulate=True, results=tmp_path / "results")
    with pytest.raises(UnsafeConfig):
        batchmark.open_run(handle.path).spec()
    reopened = batchmark.open_run(handle.path, allow_external_code=True)
    assert [s.name for s in reopened.spec().build_scorers()] == ["hook"]


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
