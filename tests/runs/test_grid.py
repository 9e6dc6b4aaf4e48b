from __future__ import annotations

import hashlib
import json
import string
import textwrap
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchmark._errors import ConfigError, RenderError
from batchmark.config._schema import EvalSpec, load_config
from batchmark.config._tokens import prefix_units
from batchmark.runs._grid import (
    CUSTOM_ID_RE,
    Request,
    expand,
    make_custom_id,
    min_cacheable_tokens,
    validate_spec,
)
from batchmark.runs._packing import BatchPacker

REPO = Path(__file__).resolve().parents[2]
ROWS = [{"id": f"q{i}", "question": f"question {i}?"} for i in range(3)]
PROMPTS = """\
  - {name: plain, system: "Be terse.", user: "{{ question }}"}
  - {name: fewshot, messages: [{role: user, content: "1+1?"}, {role: assistant, content: "2"},
                               {role: user, content: "{{ question }}"}]}
"""
MODELS = """\
  - claude-haiku-4-5
  - {name: sonnet, model: claude-sonnet-4-6, params: {max_tokens: 64, stop_sequences: ["##"]}}
"""


def make_spec(
    tmp_path: Path,
    *,
    rows: list[dict] = ROWS,
    prompts: str = PROMPTS,
    models: str = MODELS,
    extra: str = "",
) -> EvalSpec:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "eval.yaml"
    config.write_text(
        "name: t\ndataset: {path: d.jsonl, id_field: id}\n"
        f"prompts:\n{prompts}models:\n{models}params: {{max_tokens: 32}}\n" + textwrap.dedent(extra)
    )
    return load_config(config)


def pairs(spec: EvalSpec) -> set[tuple[str, str]]:
    return {(r.custom_id, r.cache_key) for r in expand(spec)}


# --- custom ids -----------------------------------------------------------------------

names = st.text(min_size=1, max_size=80)
epochs = st.integers(min_value=0, max_value=99_999)


@given(names, names, names, epochs)
def test_custom_id_is_always_valid(variant: str, model: str, row: str, epoch: int) -> None:
    assert CUSTOM_ID_RE.match(make_custom_id(variant, model, row, epoch))


SLUG_KEEPS = set(string.ascii_letters + string.digits + "_")


def documented_custom_id(variant: str, model: str, row: str, epoch: int) -> str:
    """The scheme as _keys' docstring states it, computed here from the cell alone."""

    def slug(text: str, width: int) -> str:
        return "".join(c if c in SLUG_KEEPS else "_" for c in text[:width])

    readable = f"{slug(variant, 10)}-{slug(model, 12)}-{slug(row, 16)}-{epoch}"[:47]
    cell = json.dumps([variant, model, row, epoch], ensure_ascii=False, separators=(",", ":"))
    return f"{readable}-{hashlib.sha256(cell.encode()).hexdigest()[:16]}"


@given(names, names, names, epochs)
def test_custom_id_is_a_pure_function_of_the_cell(
    variant: str, model: str, row: str, epoch: int
) -> None:
    assert make_custom_id(variant, model, row, epoch) == documented_custom_id(
        variant, model, row, epoch
    )


@given(
    st.tuples(names, names, names, epochs),
    st.tuples(names, names, names, epochs),
)
def test_distinct_cells_get_distinct_custom_ids(a: tuple, b: tuple) -> None:
    if a != b:
        assert make_custom_id(*a) != make_custom_id(*b)


def test_cells_whose_names_slug_alike_get_distinct_custom_ids() -> None:
    assert make_custom_id("a b", "m", "r", 0) != make_custom_id("a_b", "m", "r", 0)
    long = "x" * 30
    assert make_custom_id("v", "m", long + "1", 0) != make_custom_id("v", "m", long + "2", 0)


def test_custom_id_scheme_is_stable_across_releases() -> None:
    # Changing this breaks resuming runs made by earlier versions.
    assert make_custom_id("plain", "claude-haiku-4-5", "capital-france", 0) == (
        "plain-claude_haiku-capital_france-0-7a48404880462300"
    )


def test_expand_uses_make_custom_id(tmp_path: Path) -> None:
    requests = list(expand(make_spec(tmp_path)))
    assert len(requests) == len(ROWS) * 2 * 2
    for r in requests:
        assert r.custom_id == make_custom_id(r.variant, r.model_key, r.row_id, r.epoch)


# --- requests -------------------------------------------------------------------------


def test_expand_streams_every_cell_row_by_row(tmp_path: Path) -> None:
    requests = list(expand(make_spec(tmp_path, extra="epochs: 2\n")))
    assert len(requests) == 3 * 2 * 2 * 2
    assert [r.row_id for r in requests[:8]] == ["q0"] * 8
    assert len({r.custom_id for r in requests}) == len(requests)


def test_request_params_are_complete_messages_api_params(tmp_path: Path) -> None:
    first, *_ = (r for r in expand(make_spec(tmp_path)) if r.model_key == "sonnet")
    assert first.model == "claude-sonnet-4-6"
    assert first.params == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "question 0?"}],
        "stop_sequences": ["##"],
    }


def test_cache_key_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, extra='api_version: "2023-06-01"\nepochs: 2\n')
    requests = list(expand(spec))
    assert len(requests) == len(ROWS) * 2 * 2 * 2
    for r in requests:
        blob = orjson.dumps(
            {"params": r.params, "epoch": r.epoch, "api_version": "2023-06-01"},
            option=orjson.OPT_SORT_KEYS,
        )
        assert r.cache_key == hashlib.sha256(blob).hexdigest()


def test_nbytes_is_the_size_of_the_batch_entry(tmp_path: Path) -> None:
    requests = list(expand(make_spec(tmp_path)))
    assert len(requests) == len(ROWS) * 2 * 2
    for r in requests:
        assert r.nbytes == len(orjson.dumps(r.entry()))


def test_epochs_share_params_but_not_ids_or_cache_keys(tmp_path: Path) -> None:
    requests = [r for r in expand(make_spec(tmp_path, extra="epochs: 3\n"))][:3]
    assert [r.epoch for r in requests] == [0, 1, 2]
    assert len({orjson.dumps(r.params) for r in requests}) == 1
    assert len({r.cache_key for r in requests}) == len({r.custom_id for r in requests}) == 3


def test_api_version_is_part_of_the_cache_key(tmp_path: Path) -> None:
    default = pairs(make_spec(tmp_path / "a", models="  - m\n"))
    pinned = pairs(make_spec(tmp_path / "b", models="  - m\n", extra="api_version: '2023-06-01'\n"))
    assert {c for c, _ in default} == {c for c, _ in pinned}
    assert not {k for _, k in default} & {k for _, k in pinned}


def test_reordering_prompts_models_and_rows_changes_nothing(tmp_path: Path) -> None:
    before = pairs(make_spec(tmp_path / "a"))
    prompts = "".join(reversed(PROMPTS.replace("\n" + " " * 31, " ").splitlines(True)))
    after = pairs(
        make_spec(
            tmp_path / "b",
            rows=list(reversed(ROWS)),
            prompts=prompts,
            models="".join(reversed(MODELS.splitlines(True))),
        )
    )
    assert before == after and len(before) == 12


def test_editing_one_variant_changes_only_its_cache_keys(tmp_path: Path) -> None:
    before = {r.custom_id: (r.variant, r.cache_key) for r in expand(make_spec(tmp_path / "a"))}
    edited = PROMPTS.replace("Be terse.", "Be very terse.")
    after = {
        r.custom_id: (r.variant, r.cache_key)
        for r in expand(make_spec(tmp_path / "b", prompts=edited))
    }
    assert before.keys() == after.keys()
    changed = {before[c][0] for c in before if before[c][1] != after[c][1]}
    unchanged = {before[c][0] for c in before if before[c][1] == after[c][1]}
    assert changed == {"plain"} and unchanged == {"fewshot"}


# --- prompt caching -------------------------------------------------------------------

LONG = ("Rules. " * 800).strip()  # ~1400 tokens: enough for Sonnet 4.6 (1024), not Haiku 4.5 (4096)


def system_of(spec: EvalSpec) -> dict[str, object]:
    return {r.model_key: r.params.get("system") for r in expand(spec)}


def test_long_static_system_prompt_gets_a_one_hour_cache_breakpoint(tmp_path: Path) -> None:
    prompts = f'  - {{name: p, system: "{LONG}", user: "{{{{ question }}}}"}}\n'
    systems = system_of(make_spec(tmp_path, prompts=prompts))
    assert systems["sonnet"] == [
        {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert systems["claude-haiku-4-5"] == LONG  # below Haiku's 4096-token minimum


def test_system_prompt_reading_row_variables_is_never_cached(tmp_path: Path) -> None:
    prompts = f'  - {{name: p, system: "{LONG}{{{{ row_id }}}}", user: "x"}}\n'
    requests = list(expand(make_spec(tmp_path, prompts=prompts)))
    assert len(requests) == len(ROWS) * 2
    # a plain string on Sonnet too, whose minimum LONG reaches: no cache_control block
    assert [r.params["system"] for r in requests] == [LONG + r.row_id for r in requests]


def test_prompt_cache_off_never_adds_cache_control(tmp_path: Path) -> None:
    prompts = f'  - {{name: p, system: "{LONG}", user: "{{{{ question }}}}"}}\n'
    spec = make_spec(tmp_path, prompts=prompts, extra="prompt_cache: 'off'\n")
    assert system_of(spec) == {"claude-haiku-4-5": LONG, "sonnet": LONG}


SONNET = "  - {name: sonnet, model: claude-sonnet-4-6}\n"
LONG_TOOL = {"name": "lookup", "description": LONG, "input_schema": {"type": "object"}}
SHORT_TOOL = {"name": "calc", "description": "Adds.", "input_schema": {"type": "object"}}
BREAKPOINT = {"type": "ephemeral", "ttl": "1h"}


def with_tools(*tools: dict) -> str:
    params = json.dumps({"tools": list(tools)})
    return f"  - {{name: sonnet, model: claude-sonnet-4-6, params: {params}}}\n"


def fewshot(system: str | None, example: str, final: str = "{{ question }}") -> str:
    messages = [
        {"role": "user", "content": example},
        {"role": "assistant", "content": "42"},
        {"role": "user", "content": final},
    ]
    variant = {"name": "p", "messages": messages, **({"system": system} if system else {})}
    return f"  - {json.dumps(variant)}\n"


def first_params(spec: EvalSpec) -> dict:
    return next(iter(expand(spec))).params


def breakpoints(params: dict) -> list[int]:
    """Positions (in prefix order) of the units that carry a cache_control marker."""
    return [i for i, u in enumerate(prefix_units(params)) if u.cache_control is not None]


def test_static_tools_alone_get_the_breakpoint_on_the_last_tool(tmp_path: Path) -> None:
    prompts = '  - {name: p, system: "Row {{ row_id }}.", user: "{{ question }}"}\n'
    models = with_tools(SHORT_TOOL, LONG_TOOL)
    params = first_params(make_spec(tmp_path, prompts=prompts, models=models))
    assert params["tools"] == [SHORT_TOOL, {**LONG_TOOL, "cache_control": BREAKPOINT}]
    assert isinstance(params["system"], str) and breakpoints(params) == [1]


def test_system_and_few_shot_examples_get_one_breakpoint_after_the_last_example(
    tmp_path: Path,
) -> None:
    spec = make_spec(tmp_path, prompts=fewshot("Be terse.", LONG), models=SONNET)
    questions = {r["id"]: r["question"] for r in ROWS}
    requests = list(expand(spec))
    assert len(requests) == len(ROWS)
    for request in requests:
        params = request.params
        assert params["system"] == "Be terse."
        assert params["messages"][0] == {"role": "user", "content": LONG}
        assert params["messages"][1] == {
            "role": "assistant",
            "content": [{"type": "text", "text": "42", "cache_control": BREAKPOINT}],
        }
        assert params["messages"][2] == {"role": "user", "content": questions[request.row_id]}
        assert breakpoints(params) == [2]  # system, example, answer: the third unit


def test_few_shot_prefix_without_a_system_prompt_is_cached(tmp_path: Path) -> None:
    params = first_params(make_spec(tmp_path, prompts=fewshot(None, LONG), models=SONNET))
    assert "system" not in params and breakpoints(params) == [1]


def test_a_system_prompt_reading_row_variables_ends_the_prefix_at_the_tools(
    tmp_path: Path,
) -> None:
    prompts = fewshot("Row {{ row_id }}.", LONG)
    params = first_params(make_spec(tmp_path, prompts=prompts, models=with_tools(LONG_TOOL)))
    assert params["tools"][0]["cache_control"] == BREAKPOINT
    assert breakpoints(params) == [0]


def test_static_prefix_below_the_model_minimum_gets_no_breakpoint(tmp_path: Path) -> None:
    prompts = fewshot("Be terse.", "What is 6 x 7?")
    spec = make_spec(tmp_path, prompts=prompts, models=with_tools(SHORT_TOOL))
    assert [breakpoints(r.params) for r in expand(spec)] == [[]] * len(ROWS)
    assert validate_spec(spec).cached == ()


def test_prompt_cache_off_leaves_tools_and_few_shot_unmarked(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        prompts=fewshot("Be terse.", LONG),
        models=with_tools(LONG_TOOL),
        extra="prompt_cache: 'off'\n",
    )
    params = first_params(spec)
    assert breakpoints(params) == [] and params["tools"] == [LONG_TOOL]
    assert [m["content"] for m in params["messages"]] == [LONG, "42", "question 0?"]


def test_no_breakpoint_is_added_to_tools_that_already_carry_four(tmp_path: Path) -> None:
    marked = [{**SHORT_TOOL, "name": f"t{i}", "cache_control": BREAKPOINT} for i in range(4)]
    spec = make_spec(tmp_path, prompts=fewshot(LONG, "1"), models=with_tools(*marked))
    assert breakpoints(first_params(spec)) == [0, 1, 2, 3]


def automatic(*tools: dict) -> str:
    params = json.dumps({"tools": list(tools), "cache_control": {"type": "ephemeral"}})
    return f"  - {{name: sonnet, model: claude-sonnet-4-6, params: {params}}}\n"


def test_automatic_caching_adds_a_breakpoint_on_the_last_block_after_the_grids(
    tmp_path: Path,
) -> None:
    spec = make_spec(tmp_path, prompts=fewshot(LONG, "1"), models=automatic())
    params = first_params(spec)
    units = prefix_units(params)
    assert breakpoints(params) == [2, 3]  # the grid's on the example's answer, then the last
    assert [u.automatic for u in units if u.cache_control] == [False, True]


def test_automatic_caching_counts_toward_the_four_breakpoints(tmp_path: Path) -> None:
    marked = [{**SHORT_TOOL, "name": f"t{i}", "cache_control": BREAKPOINT} for i in range(3)]
    spec = make_spec(tmp_path, prompts=fewshot(LONG, "1"), models=automatic(*marked))
    params = first_params(spec)
    assert params["messages"][1]["content"] == "42"  # the grid added none
    assert len(breakpoints(params)) == 4  # three tools and the automatic one


def test_moving_the_breakpoint_changes_the_cache_key(tmp_path: Path) -> None:
    # Same rendered text; `row_id[:0]` (empty) only makes the first example row-dependent,
    # which moves the breakpoint from the few-shot answer back to the system prompt.
    at_example = make_spec(tmp_path / "a", prompts=fewshot(LONG, "1+1?"), models=SONNET)
    at_system = make_spec(
        tmp_path / "b", prompts=fewshot(LONG, "1+1?{{ row_id[:0] }}"), models=SONNET
    )
    off = make_spec(
        tmp_path / "c", prompts=fewshot(LONG, "1+1?"), models=SONNET, extra="prompt_cache: 'off'\n"
    )
    assert validate_spec(at_example).cache_breakpoints == (("p", "sonnet", "messages[1]"),)
    assert validate_spec(at_system).cache_breakpoints == (("p", "sonnet", "system"),)
    keys = [{r.custom_id: r.cache_key for r in expand(s)} for s in (at_example, at_system, off)]
    assert keys[0].keys() == keys[1].keys() == keys[2].keys()
    assert len(keys[0]) == len(ROWS)
    for custom_id in keys[0]:
        assert len({k[custom_id] for k in keys}) == 3


def test_minimum_cacheable_prefix_by_model_comes_from_the_catalog() -> None:
    assert min_cacheable_tokens("claude-sonnet-4-6") == 1024
    assert min_cacheable_tokens("claude-opus-4-7") == 2048
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-opus-4-5") == 4096  # an alias
    # Opus 5 was the 1,024 default before the catalog: 512 per the prompt-caching docs
    # (docs_prompt_caching in models.json; batches-api.md does not list Opus 5).
    assert min_cacheable_tokens("claude-opus-5") == 512
    # not in the catalog, or a minimum not published (Opus 5.5): the fallback
    assert min_cacheable_tokens("some-new-model") == 1024
    assert min_cacheable_tokens("claude-opus-5-5") == 1024


# --- validation report ----------------------------------------------------------------


def test_validate_spec_counts_the_grid(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, extra="epochs: 2\n")
    requests: list[Request] = list(expand(spec))
    report = validate_spec(spec)
    assert (report.rows, report.variants, report.models, report.epochs) == (3, 2, 2, 2)
    assert report.requests == 24 and report.batches == 1
    assert report.total_bytes == sum(r.nbytes for r in requests)
    assert report.largest_request_bytes == max(r.nbytes for r in requests)
    assert report.max_output_tokens == 12 * 32 + 12 * 64
    assert report.approx_input_tokens > 0 and report.cached == ()


def test_validate_spec_counts_batches_under_the_limits(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, extra="batch: {max_requests: 5}\n")
    assert validate_spec(spec).batches == 3  # 12 requests, 5 per batch


def test_a_configs_packer_takes_its_batch_section(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, extra="batch: {max_requests: 5, max_in_flight: 3}\n")
    packer = BatchPacker.for_config(spec.batch)
    assert [packer.cap(i) for i in range(4)] == [5, 4, 3, 5]  # staggered by max_in_flight
    assert packer.max_bytes == spec.batch.max_bytes and packer.first == 0


def test_validate_spec_packs_batches_greedily_by_bytes(tmp_path: Path) -> None:
    sizes = [r.nbytes for r in expand(make_spec(tmp_path / "a", models="  - claude-opus-4-8\n"))]
    limit = max(sizes) * 2 + 16  # '{"requests":[' + two entries + ',' + ']}' fits, three not
    extra = f"batch: {{max_bytes: {limit}}}\n"
    spec = make_spec(tmp_path / "b", models="  - claude-opus-4-8\n", extra=extra)
    expected, used = 0, limit
    for size in sizes:
        if used + 1 + size > limit:
            expected, used = expected + 1, 15 + size
        else:
            used += 1 + size
    report = validate_spec(spec)
    assert report.batches == expected and 3 <= expected < report.requests == 6


def test_request_larger_than_max_bytes_is_a_config_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, extra="batch: {max_bytes: 100}\n")
    with pytest.raises(ConfigError, match=r"row 'q0'\) is \d+ bytes, over batch.max_bytes \(100\)"):
        validate_spec(spec)


def test_validate_spec_reports_missing_template_variables(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, prompts='  - {name: p, user: "{{ question }} {{ context }}"}\n')
    with pytest.raises(RenderError, match="variant 'p', row 'q0': .*undefined variable 'context'"):
        validate_spec(spec)


def test_validate_spec_names_cached_cells(tmp_path: Path) -> None:
    prompts = f'  - {{name: p, system: "{LONG}", user: "{{{{ question }}}}"}}\n'
    assert validate_spec(make_spec(tmp_path, prompts=prompts)).cached == (("p", "sonnet"),)


def test_shipped_quickstart_expands_to_64_requests() -> None:
    report = validate_spec(load_config(REPO / "configs" / "quickstart.yaml"))
    assert (report.rows, report.variants, report.models, report.requests) == (16, 2, 2, 64)
