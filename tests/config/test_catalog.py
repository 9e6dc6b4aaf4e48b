"""The model catalog: its data file, lookups, a config's additions, and prices from it."""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from pathlib import Path

import pytest
from anthropic.types import message_create_params, model_param

from batchmark._errors import ConfigError
from batchmark.config._models import (
    CATALOG_PATH,
    Catalog,
    ModelFacts,
    default_catalog,
    load_catalog,
)
from batchmark.config._pricing import Price, cost_usd, price_for
from batchmark.config._schema import config_json_schema, load_config

REPO = Path(__file__).resolve().parents[2]
BEHAVIOUR = (
    "context_window",
    "max_output_tokens",
    "sampling",
    "prefill",
    "thinking",
    "effort",
    "vision",
    "pdf",
    "cache_min_tokens",
    "price",
    "retires_on",
    "deprecated_on",
)


def test_every_fact_in_the_catalog_has_a_source_that_exists() -> None:
    data = json.loads(CATALOG_PATH.read_text())
    known = set(data["sources"])
    for mid, entry in data["models"].items():
        cited = entry.get("sources", {})
        for key in cited.values():
            assert set(key) <= known, (mid, key)
        for fact in BEHAVIOUR:
            value = entry.get(fact)
            if value not in (None, [], {}) and not (
                isinstance(value, dict) and not any(v is not None for v in value.values())
            ):
                assert cited.get(fact) or cited.get("all"), f"{mid}.{fact} has no source"
    for key in data["api"]["sources"].values():
        assert set(key) <= known


def test_the_catalog_knows_every_model_id_of_the_installed_sdk() -> None:
    catalog = default_catalog()
    ids = re.findall(r'"(claude-[a-z0-9-]+)"', Path(model_param.__file__).read_text())
    assert ids and [m for m in ids if m not in catalog] == []


def test_the_known_request_keys_are_the_sdks() -> None:
    sdk = set(message_create_params.MessageCreateParamsBase.__annotations__)
    keys = set(default_catalog().api.versions["2026-10-21"].request_keys)
    # workspace_id travels as a header; stream is a key of the streaming variant
    assert keys == sdk - {"workspace_id"} | {"stream"}
    legacy = set(default_catalog().api.versions["2023-06-01"].request_keys)
    assert legacy == keys | {"temperature", "top_p", "top_k"}


def test_the_catalog_ships_in_the_wheel() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "config/models.json" in pyproject["tool"]["setuptools"]["package-data"]["batchmark"]
    assert load_catalog(CATALOG_PATH).get("claude-haiku-4-5") is not None


def test_a_model_is_found_by_id_or_alias_and_a_typo_gets_suggestions() -> None:
    catalog = default_catalog()
    assert catalog.get("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"  # type: ignore[union-attr]
    assert catalog.get("claude-haiku-4-5-20251001") is catalog.get("claude-haiku-4-5")
    assert catalog.get("claude-haiku-4.5") is None
    assert catalog.suggest("claude-haiku-4.5")[0] == "claude-haiku-4-5"
    assert catalog.suggest("sonnet-4-6")[0] == "claude-sonnet-4-6"
    assert catalog.suggest("m") == []
    assert len(list(catalog.entries())) == len(catalog)


def test_retirement_is_the_status_and_a_date_gone_by_is_overdue() -> None:
    """SDK ``ModelInfo``: a past ``retires_at`` on a deprecated model means retirement
    is overdue, not that it has occurred; ``lifecycle`` is the signal."""
    sonnet_45 = default_catalog().get("claude-sonnet-4-5")
    assert sonnet_45 is not None and sonnet_45.retires_on == _dt.date(2026, 11, 30)
    assert not sonnet_45.overdue(_dt.date(2026, 11, 29))
    assert sonnet_45.overdue(_dt.date(2026, 11, 30))
    assert not sonnet_45.retired(_dt.date(2026, 11, 30))
    assert sonnet_45.lifecycle(_dt.date(2026, 12, 1)) == "deprecated"
    opus_41 = default_catalog().get("claude-opus-4-1-20250805")
    assert opus_41 is not None and opus_41.retired(_dt.date(2026, 1, 1))
    assert opus_41.lifecycle(_dt.date(2026, 1, 1)) == "retired"


def test_entries_override_facts_or_add_a_model_like_another() -> None:
    catalog = default_catalog().with_entries(
        {
            "claude-haiku-4-5": ModelFacts(max_output_tokens=1000, thinking={"adaptive": True}),
            "claude-new-6": ModelFacts(like="claude-sonnet-4-6", context_window=2_000_000),
            "claude-bare-1": ModelFacts(),
        }
    )
    haiku = catalog.get("claude-haiku-4-5-20251001")
    assert haiku is not None and haiku.max_output_tokens == 1000
    assert haiku.thinking.adaptive is True and haiku.thinking.enabled == "accepted"
    assert haiku.aliases == ["claude-haiku-4-5"]
    new = catalog.get("claude-new-6")
    assert new is not None and new.context_window == 2_000_000
    assert new.prefill is False and new.price == default_catalog().get("claude-sonnet-4-6").price  # type: ignore[union-attr]
    assert new.display_name is None and new.aliases == []  # identity is not copied
    bare = catalog.get("claude-bare-1")
    assert bare is not None and bare.max_output_tokens is None and bare.price is None
    assert default_catalog().get("claude-new-6") is None  # the shipped catalog is unchanged


# --- prices --------------------------------------------------------------------------


def test_prices_come_from_the_catalog_and_agree_with_batches_api_md() -> None:
    # batches-api.md §6: Opus 4.5-4.8 and 5 $5/$25, Sonnet 4.5/4.6 and 5 $3/$15, Haiku 4.5 $1/$5
    for model, (p_in, p_out) in {
        "claude-opus-4-8": (5, 25),
        "claude-opus-5": (5, 25),
        "claude-opus-4-5-20251101": (5, 25),
        "claude-sonnet-4-6": (3, 15),
        "claude-sonnet-5": (3, 15),  # research found $2/$10; batches-api.md wins
        "claude-haiku-4-5": (1, 5),
        "claude-opus-4-0": (15, 75),  # retired, still priced for old runs
    }.items():
        price = price_for(model)
        assert price is not None and (price.input, price.output) == (p_in, p_out), model
    assert price_for("claude-nonexistent-9") is None


def test_cache_prices_default_to_the_multipliers_unless_the_catalog_has_its_own() -> None:
    usage = {
        "input_tokens": 1_000_000,
        "cache_creation_input_tokens": 1_000_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1_000_000},
        "cache_read_input_tokens": 1_000_000,
        "output_tokens": 0,
    }
    assert cost_usd(usage, Price(2.0, 10.0), batch=False) == pytest.approx(2 + 4 + 0.2)
    sonnet_55 = price_for("claude-sonnet-5-5")  # its cache reads are 0.05x input since 2026-10
    assert sonnet_55 is not None and sonnet_55.read == pytest.approx(0.1)
    assert cost_usd(usage, sonnet_55, batch=False) == pytest.approx(2 + 4 + 0.1)


def test_a_long_prompt_is_billed_at_the_long_context_prices() -> None:
    haiku_55 = price_for("claude-haiku-5-5")
    assert haiku_55 is not None and haiku_55.long_context is not None
    short = {"input_tokens": 100_000, "output_tokens": 1_000_000}
    long = {"input_tokens": 100_001, "output_tokens": 1_000_000}
    assert cost_usd(short, haiku_55, batch=False) == pytest.approx(0.01 + 0.5)
    assert cost_usd(long, haiku_55, batch=False) == pytest.approx(100_001 * 0.5 / 1e6 + 2.5)


def test_a_pricing_override_wins_over_the_catalog_by_id_alias_or_prefix() -> None:
    assert price_for("claude-haiku-4-5", {"claude-haiku-4-5": {"input": 9, "output": 9}}) == (
        Price(9, 9)
    )
    dated = price_for("claude-haiku-4-5-20251001", {"claude-haiku-4-5": {"input": 9, "output": 9}})
    assert dated == Price(9, 9)
    assert price_for("my-model", {"my-": {"input": 1, "output": 5}}) == Price(1, 5)


# --- a config's catalog: section -------------------------------------------------------

BASE = """\
name: t
dataset: {path: d.jsonl, id_field: id}
prompts: [{name: p, user: "{{ q }}"}]
models: [claude-new-6]
"""


def _config(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "d.jsonl").write_text('{"id": "r1", "q": "hi"}\n')
    path = tmp_path / "eval.yaml"
    path.write_text(BASE + extra)
    return path


def test_a_config_adds_a_model_with_its_facts_and_price(tmp_path: Path) -> None:
    spec = load_config(
        _config(
            tmp_path,
            "catalog:\n"
            "  claude-new-6:\n"
            "    like: claude-sonnet-4-6\n"
            "    max_output_tokens: 256000\n"
            "    released: 2027-02-01\n"
            "    price: {input: 4, output: 20}\n",
        )
    )
    facts = spec.model_catalog().get("claude-new-6")
    assert facts is not None and facts.max_output_tokens == 256_000
    assert facts.released == _dt.date(2027, 2, 1) and facts.sampling == "temperature_or_top_p"
    assert price_for("claude-new-6", spec.pricing, spec.model_catalog()) == Price(4.0, 20.0)


def test_like_must_name_a_catalog_model(tmp_path: Path) -> None:
    path = _config(tmp_path, "catalog:\n  claude-new-6: {like: claude-sonet-4-6}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "catalog.claude-new-6 (line 6): `like: claude-sonet-4-6` names no model" in message
    assert "did you mean `claude-sonnet-4-6`?" in message


def test_a_catalog_entry_with_an_unknown_fact_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = _config(tmp_path, "catalog:\n  claude-new-6: {max_output_token: 5}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "catalog.claude-new-6.max_output_token (line 6): unknown field" in str(caught.value)
    assert "did you mean `max_output_tokens`?" in str(caught.value)


def test_the_json_schema_documents_the_catalog_section() -> None:
    schema = config_json_schema()
    assert "catalog" in schema["properties"]
    facts = schema["$defs"]["ModelFacts"]["properties"]
    assert "id" not in facts and facts["max_output_tokens"]["description"]


# --- docs/models.md ------------------------------------------------------------------


def _tokens(x: int | None) -> str:
    if x is None:
        return "—"
    if x % 1_000_000 == 0:
        return f"{x // 1_000_000}M"
    return f"{x // 1000}K" if x % 1000 == 0 else str(x)


def models_table(catalog: Catalog) -> str:
    """The table of docs/models.md, made from the catalog."""
    rows = [
        "| model | aliases | status | context | max output | cache min | price in / out "
        "| sampling (2023-06-01) | prefill | thinking when omitted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in catalog.entries():
        status = m.status or "—"
        if m.retires_on is not None:
            status += f" ({m.retires_on})" if m.status == "retired" else f", retires {m.retires_on}"
        price = "—" if m.price is None else f"${m.price.input:g} / ${m.price.output:g}"
        prefill = "—" if m.prefill is None else "yes" if m.prefill else "no"
        aliases = ", ".join(f"`{a}`" for a in m.aliases)
        rows.append(
            f"| `{m.id}` | {aliases} | {status} | {_tokens(m.context_window)} "
            f"| {_tokens(m.max_output_tokens)} | {_tokens(m.cache_min_tokens)} | {price} "
            f"| {m.sampling or '—'} | {prefill} | {m.thinking.default or '—'} |"
        )
    return "\n".join(rows) + "\n"


def test_the_models_table_in_the_docs_is_the_catalogs() -> None:
    docs = (REPO / "docs" / "models.md").read_text()
    start, end = "<!-- models table: generated from models.json -->\n", "<!-- end -->"
    table = docs.split(start, 1)[1].split(end, 1)[0]
    assert table == models_table(default_catalog()), "regenerate it: see this test"


def test_the_docs_example_of_a_new_model_validates(tmp_path: Path) -> None:
    from batchmark.runs._grid import validate_spec

    docs = (REPO / "docs" / "models.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", docs, flags=re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "d.jsonl").write_text('{"id": "r1", "q": "hi"}\n')
    head = (
        'name: t\ndataset: {path: d.jsonl, id_field: id}\nprompts: [{name: p, user: "{{ q }}"}]\n'
    )
    path = tmp_path / "eval.yaml"
    path.write_text(head + example)

    spec = load_config(path)

    assert validate_spec(spec).requests == 1
    catalog = spec.model_catalog()
    assert catalog.get("claude-sonnet-6").max_output_tokens == 256_000  # type: ignore[union-attr]
    assert catalog.get("claude-haiku-4-5").cache_min_tokens == 2048  # type: ignore[union-attr]
