"""A request's identity (``_keys``): one cache key and one custom_id for every path."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import batchmark
from batchmark._errors import ConfigError
from batchmark.runs._driver import _insert_requests
from batchmark.runs._grid import Request, expand
from batchmark.runs._keys import (
    cache_key,
    cache_keyer,
    custom_id,
    judge_custom_id,
    make_custom_id,
    pair_prefix,
    params_bytes,
    row_slug,
)
from batchmark.runs._ledger import Ledger

from ..reports.support import JUDGE, write_eval
from .test_grid import make_spec

API_VERSION = "2023-06-01"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
json_params = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
epochs = st.integers(min_value=0, max_value=99_999)
api_versions = st.none() | st.text(max_size=12)


@given(json_params, epochs, api_versions)
def test_the_cache_key_is_the_sha256_of_the_documented_canonical_json(
    params: dict[str, Any], epoch: int, api_version: str | None
) -> None:
    blob = {"params": params, "epoch": epoch, "api_version": api_version}
    expected = hashlib.sha256(orjson.dumps(blob, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert cache_key(params, epoch, api_version) == expected
    assert cache_keyer(api_version)(params_bytes(params), epoch) == expected


def test_the_cache_key_does_not_change_across_releases() -> None:
    # Changing these orphans every response cache and breaks resuming earlier runs.
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    assert cache_key(params, 0, None) == (
        "fffd558f40a920c5bcdd3e09dabf6b5ea9b7046006b29024a83a25e37b469cce"
    )
    assert cache_key({**params, "system": "Be terse."}, 1, API_VERSION) == (
        "390d374f720c0e1e7c05da8b545584ee24759e0e15ca93935178ef8054d6ebdf"
    )


def test_expand_keys_and_ids_match_the_pinned_values(tmp_path: Path) -> None:
    rows = [{"id": "capital-france", "question": "What is the capital of France?"}]
    spec = make_spec(
        tmp_path,
        rows=rows,
        prompts='  - {name: plain, system: "Be terse.", user: "{{ question }}"}\n',
        models="  - claude-haiku-4-5\n",
        extra=f'api_version: "{API_VERSION}"\nepochs: 2\n',
    )
    assert [(r.custom_id, r.cache_key) for r in expand(spec)] == [
        (
            "plain-claude_haiku-capital_france-0-7a48404880462300",
            "0ad004f4e84040c12256386ba662b54259f5c8a7aaa5884c3b618af35c8d0617",
        ),
        (
            "plain-claude_haiku-capital_france-1-b571fa7e2280bbc4",
            "390d374f720c0e1e7c05da8b545584ee24759e0e15ca93935178ef8054d6ebdf",
        ),
    ]


@pytest.mark.parametrize("api_version", [None, API_VERSION])
def test_expand_and_the_keys_module_agree(tmp_path: Path, api_version: str | None) -> None:
    extra = "epochs: 3\n" + (f'api_version: "{api_version}"\n' if api_version else "")
    requests = list(expand(make_spec(tmp_path, extra=extra)))
    assert len(requests) == 3 * 2 * 2 * 3
    for r in requests:
        assert r.custom_id == make_custom_id(r.variant, r.model_key, r.row_id, r.epoch)
        assert r.cache_key == cache_key(r.params, r.epoch, api_version)


names = st.text(min_size=1, max_size=80)


@given(names, names, names, epochs)
def test_custom_id_from_reused_slugs_is_make_custom_id(
    variant: str, model_key: str, row_id: str, epoch: int
) -> None:
    prefix, slug = pair_prefix(variant, model_key), row_slug(row_id)
    assert custom_id(prefix, slug, variant, model_key, row_id, epoch) == make_custom_id(
        variant, model_key, row_id, epoch
    )


def test_judge_custom_id_is_deterministic_and_valid() -> None:
    cid = "v1-haiku-row_1-0-0123456789abcdef"
    assert judge_custom_id(cid, "judge") == judge_custom_id(cid, "judge")
    assert judge_custom_id(cid, "judge") != judge_custom_id(cid, "judge2")
    assert judge_custom_id(cid, "judge").startswith("j-judge-")


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=80))
def test_judge_custom_ids_are_valid_and_never_look_like_candidate_ids(
    candidate: str, name: str
) -> None:
    cid = judge_custom_id(candidate, name)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", cid)
    assert cid.count("-") == 2  # candidate ids have four


def test_judge_custom_ids_do_not_change_across_releases() -> None:
    # Changing these re-asks every judge of a resumed run and orphans cached verdicts.
    cid = "v1-haiku-row_1-0-0123456789abcdef"
    assert judge_custom_id(cid, "grader") == "j-grader-c4103addf59f4859735359fc"
    assert judge_custom_id("a", "Sonnet judge ✓ long name here") == (
        "j-Sonnet_judge___l-40954ade2c46a534b2fb0e7c"
    )


def test_judge_and_candidate_requests_are_keyed_by_the_same_function(tmp_path: Path) -> None:
    """A judge request (keyed in ``_scoring``) gets the key ``expand`` would give a grid
    request with the same params, epoch and API version."""
    rows = [
        {"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in (1, 2)
    ]
    config = write_eval(
        tmp_path / "cfg",
        rows=rows,
        models=["claude-haiku-4-5"],
        scorers=[JUDGE],
        api_version=API_VERSION,
    )
    run = batchmark.run(config, results=tmp_path / "results", emulate=True, use_cache=False)
    db = sqlite3.connect(run.path / "ledger.sqlite")
    try:
        stored = db.execute(
            "SELECT q.kind, q.epoch, q.cache_key, p.params FROM requests q "
            "JOIN params p ON p.seq = q.seq"
        ).fetchall()
    finally:
        db.close()
    kinds = sorted(kind for kind, *_ in stored)
    assert kinds == ["candidate"] * 4 + ["judge"] * 4
    grid_key = cache_keyer(API_VERSION)  # as expand keys its requests
    for kind, epoch, key, params in stored:
        if kind == "judge":
            epoch = 0  # a judge request is keyed as epoch 0, whatever its candidate's
        assert key == grid_key(params_bytes(orjson.loads(params)), epoch), kind


# --- the ledger refuses what the keys cannot tell apart -------------------------------------


def _request(custom_id: str, row_id: str, variant: Any = "v") -> Request:
    return Request(custom_id, variant, "m", "model-x", row_id, 0, {"max_tokens": 5}, f"k-{row_id}")


def test_two_requests_sharing_a_custom_id_are_a_config_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(ConfigError, match="two requests share a custom_id") as info:
            _insert_requests(ledger, [_request("same", "row0"), _request("same", "row1")], None)
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert ledger.db.execute("SELECT count(*) FROM requests").fetchone() == (0,)

        _insert_requests(ledger, [_request("first", "row0")], None)
        with pytest.raises(ConfigError, match="rename a variant, model, row id or scorer"):
            _insert_requests(ledger, [_request("first", "row1")], None)
        assert ledger.db.execute("SELECT count(*) FROM requests").fetchone() == (1,)
    finally:
        ledger.close()


def test_another_integrity_error_is_not_mistaken_for_a_shared_custom_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            _insert_requests(ledger, [_request("r0", "row0", variant=None)], None)
    finally:
        ledger.close()
