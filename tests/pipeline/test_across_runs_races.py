"""Races between runs that share a results root: sequences a review of the first
version found paying twice or trusting another run's batch (each failed on f41753f).
Each test counts what the emulator received.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import batchmark

from .adversarial import bounded
from .support import LiveEmulator, write_config
from .test_across_runs import SMALL, _cli, _env, _kill_at, _statuses


def _paid_twice(live: LiveEmulator) -> dict[str, int]:
    return {c: n for c, n in Counter(live.submitted()).items() if n > 1}


def test_claims_of_a_run_killed_after_create_are_taken_over_and_paid_twice(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # A: killed -9 right after its first create returned (batch exists, not recorded, its
    # claims have batch_id NULL). B, same config, same root, starts before A is resumed:
    # claim() takes A's claims over ("stopped before sending") and sends them again.
    # A's resume then adopts its own batch (nobody recorded it) and collects it too.
    config = write_config(tmp_path / "cfg", batch=SMALL)
    results = tmp_path / "results"
    a = _kill_at("after_create", config, results, live)
    first = {x.id for x in live.batch_list()}  # A's creates happened
    assert first

    with bounded(120):
        b = batchmark.run(config, results=results, poll_interval=0.02)
        a = batchmark.resume(a.id, results=results, poll_interval=0.02)

    assert _statuses(a) == _statuses(b) == {"succeeded": 24}
    # The requests in A's batches (created before the kill) alone: B sent them again.
    in_a_batches = {c for s in live.emu.store.submitted() if s.id in first for c in s.custom_ids}
    twice = {c for c in _paid_twice(live) if c in in_a_batches}
    assert twice == set(), f"{len(twice)} of A's {len(in_a_batches)} in-flight requests paid twice"
    assert _paid_twice(live) == {}, f"{len(_paid_twice(live))} requests paid twice"


def test_a_resumed_run_sends_again_what_another_run_already_paid_and_cached(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # A: killed before its first create (claims taken over, intent open). B, same config,
    # same root, runs to the end: every answer is in the shared cache, every claim
    # released. A's resume abandons its intent (nothing listed), puts the chunk back to
    # 'pending' and sends it, and every later chunk too: the cache is consulted only when
    # requests are inserted, never before a chunk is claimed and sent.
    config = write_config(tmp_path / "cfg", batch=SMALL)
    results = tmp_path / "results"
    a = _kill_at("before_create", config, results, live)
    assert live.submitted() == []

    with bounded(120):
        b = batchmark.run(config, results=results, poll_interval=0.02)
        assert sum(Counter(live.submitted()).values()) == 24
        a = batchmark.resume(a.id, results=results, poll_interval=0.02)

    assert _statuses(a) == _statuses(b) == {"succeeded": 24}
    assert _paid_twice(live) == {}, f"{len(_paid_twice(live))} requests paid twice"


def test_a_look_alike_batch_of_another_prompt_is_verified_and_its_answers_trusted(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # Two CI jobs of one eval on two machines (two results roots), one API key: the PR
    # changed a prompt's wording, nothing else. A (PR) dies between its intent and its
    # create; B (main) submits its batches. custom_ids are a function of (variant, model,
    # row, epoch), not of the content, so B's batch of A's size passes _verify ("every
    # line names a request of the intent"): A records B's answers to B's prompt as its
    # own, and caches them under A's content keys.
    plain_a = {"name": "plain", "user": "PR wording: {{ question }}"}
    plain_b = {"name": "plain", "user": "main wording: {{ question }}"}
    terse = {"name": "terse", "system": "Answer with a number.", "user": "Q: {{ question }}"}
    live.emu.processing_seconds = 0.3
    cfg_a = write_config(tmp_path / "a", batch=SMALL, prompts=[plain_a, terse])
    cfg_b = write_config(
        tmp_path / "b", batch={**SMALL, "max_in_flight": 10}, prompts=[plain_b, terse]
    )
    a = _kill_at("before_create", cfg_a, tmp_path / "results", live)
    b = batchmark.run(cfg_b, results=tmp_path / "results-b", detach=True)
    assert live.submitted()

    with bounded(120):
        a = batchmark.resume(a.id, results=tmp_path / "results", poll_interval=0.02)

    wrong = [
        (r["custom_id"], r["text"])
        for r in a.responses()
        if r["variant"] == "plain" and not r["text"].startswith("PR wording")
    ]
    adopted = [(x["batch_id"], x["adopted"]) for x in a.batches() if x["adopted"]]
    # ... and the shared cache now answers A's content with B's answers, for every run.
    with bounded(120):
        c = batchmark.run(cfg_a, results=tmp_path / "results", poll_interval=0.02)
    poisoned = [
        r["custom_id"]
        for r in c.responses()
        if r["cached"] and r["variant"] == "plain" and not r["text"].startswith("PR wording")
    ]
    assert wrong == [] and poisoned == [], (
        f"{len(poisoned)} wrong cached answers in a new run; "
        f"A took {len(wrong)} answers of B's prompt (adopted {adopted}): {wrong[:2]}"
    )
    del b


def test_two_live_runs_pay_twice_when_one_sends_what_the_other_has_not_claimed_yet(
    live: LiveEmulator, tmp_path: Path
) -> None:
    # No kill at all. A (max_in_flight 1) claims one chunk at a time; B (same requests,
    # more batches in flight) claims, sends, collects and releases what A has not reached
    # yet. When A reaches those requests nobody holds them and A never looks in the cache
    # again: it sends them a second time although both runs were alive throughout.
    import time

    live.emu.processing_seconds = 3.0
    results = tmp_path / "results"
    cfg_a = write_config(tmp_path / "a", batch={**SMALL, "max_in_flight": 1})
    cfg_b = write_config(tmp_path / "b", batch={**SMALL, "max_in_flight": 10})
    proc = _cli("run", str(cfg_a), "--results", str(results), "-q", env=_env(live.base_url))
    try:
        with bounded(120):
            while not live.submitted():
                time.sleep(0.02)
            live.emu.processing_seconds = 0.1  # B's batches end before A's first one
            b = batchmark.run(cfg_b, results=results, poll_interval=0.02)
            _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert _statuses(b) == {"succeeded": 24}
    assert _paid_twice(live) == {}, f"{len(_paid_twice(live))} of 24 requests paid twice"
