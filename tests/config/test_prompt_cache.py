"""Prompt-cache arithmetic shared by the emulator and the estimate: where breakpoints are,
what a request reads and writes."""

from __future__ import annotations

from typing import Any

from batchmark.config._prompt_cache import LOOKBACK_BLOCKS, cache_prefixes
from batchmark.config._tokens import prefix_units

AUTO = {"type": "ephemeral"}
THINKING = {"type": "thinking", "thinking": "hmm", "signature": "sig"}


def _marked(params: dict[str, Any]) -> list[tuple[int, dict[str, Any], bool]]:
    return [
        (i, u.cache_control, u.automatic)
        for i, u in enumerate(prefix_units(params))
        if u.cache_control is not None
    ]


def test_top_level_cache_control_marks_the_last_block() -> None:
    params = {"system": "s", "messages": [{"role": "user", "content": "q"}], "cache_control": AUTO}
    assert _marked(params) == [(1, AUTO, True)]


def test_automatic_marker_skips_thinking_and_empty_text_blocks() -> None:
    params = {
        "cache_control": AUTO,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, THINKING]},
            {"role": "user", "content": [{"type": "text", "text": ""}]},
        ],
    }
    assert _marked(params) == [(1, AUTO, True)]  # the assistant's text block


def test_automatic_marker_on_an_already_marked_block_is_one_breakpoint() -> None:
    own = {"type": "ephemeral", "ttl": "1h"}
    block = {"type": "text", "text": "q", "cache_control": own}
    params = {"cache_control": AUTO, "messages": [{"role": "user", "content": [block]}]}
    assert _marked(params) == [(0, own, False)]


def test_without_top_level_cache_control_nothing_is_added() -> None:
    assert _marked({"system": "s", "messages": [{"role": "user", "content": "q"}]}) == []


def _turns(n: int) -> dict[str, Any]:
    """A conversation of ``n`` user turns (one block each) with answers between them."""
    messages: list[dict[str, Any]] = []
    for i in range(n):
        if i:
            messages.append({"role": "assistant", "content": f"answer {i} " * 50})
        messages.append({"role": "user", "content": f"question {i} " * 50})
    return {"model": "m", "cache_control": AUTO, "messages": messages}


def _written(params: dict[str, Any]) -> set[bytes]:
    outcome = cache_prefixes(params, minimum=0).apply(lambda key: False)
    return {p.key for p in outcome.written}


def test_a_grown_conversation_reads_the_cached_turns_and_writes_the_new_ones() -> None:
    first = cache_prefixes(_turns(1), minimum=0)
    grown = cache_prefixes(_turns(2), minimum=0)
    split = grown.apply(_written(_turns(1)).__contains__).split
    assert split.read == first.total
    assert split.creation_5m == grown.total - first.total and split.input_tokens == 0


def test_a_read_looks_back_at_most_20_blocks_before_a_breakpoint() -> None:
    cached = _written(_turns(1)).__contains__  # an entry at unit 0
    near = _turns(LOOKBACK_BLOCKS // 2 + 1)  # its breakpoint is unit 20
    far = _turns(LOOKBACK_BLOCKS // 2 + 2)  # unit 22
    assert cache_prefixes(near, minimum=0).apply(cached).split.read > 0
    assert cache_prefixes(far, minimum=0).apply(cached).split.read == 0


def test_a_breakpoint_below_the_minimum_caches_nothing() -> None:
    prefixes = cache_prefixes(_turns(2), minimum=10**6)
    outcome = prefixes.apply(lambda key: True)
    assert prefixes.breakpoints == () and outcome.split.input_tokens == prefixes.total
    assert outcome.written == () and outcome.hit is None
