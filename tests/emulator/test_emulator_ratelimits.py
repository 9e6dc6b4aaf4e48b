"""Rate limits as the real API reports them: ``anthropic-ratelimit-*`` headers, 429s with
``retry-after`` in whole seconds, and the queue of batch requests (``queue_limit``)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import anthropic
import pytest

from batchmark.emulator import Emulator

from .support import sdk_client, small_requests

REQUESTS = [f"anthropic-ratelimit-requests-{part}" for part in ("limit", "remaining", "reset")]
TOKENS = [
    f"anthropic-ratelimit-{kind}-{part}"
    for kind in ("tokens", "input-tokens", "output-tokens")
    for part in ("limit", "remaining", "reset")
]


def _seconds_until(rfc3339: str) -> float:
    return (datetime.fromisoformat(rfc3339) - datetime.now(UTC)).total_seconds()


def test_a_message_reports_request_and_token_limits(client, emu):
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello"}],
    )
    headers = raw.headers
    for name in REQUESTS + TOKENS:
        assert name in headers, name
    assert int(headers["anthropic-ratelimit-requests-remaining"]) == (
        int(headers["anthropic-ratelimit-requests-limit"]) - 1
    )
    # Token counts are rounded to the nearest thousand, as the API reports them.
    assert int(headers["anthropic-ratelimit-input-tokens-remaining"]) % 1000 == 0
    assert 0 <= _seconds_until(headers["anthropic-ratelimit-requests-reset"]) <= 60
    assert raw.parse().usage.output_tokens >= 1


def test_batch_calls_report_request_limits_of_their_own(client, emu):
    started = time.monotonic()
    created = client.messages.batches.with_raw_response.create(requests=small_requests(2))
    listed = client.messages.batches.with_raw_response.list()
    elapsed = time.monotonic() - started
    first = int(created.headers["anthropic-ratelimit-requests-remaining"])
    per_second = int(created.headers["anthropic-ratelimit-requests-limit"]) / 60
    # The bucket refills continuously: between the two answers it may have regained
    # what the elapsed time is worth (a loaded machine takes tens of milliseconds).
    refilled = math.ceil(elapsed * per_second)
    assert (
        first - 1
        <= int(listed.headers["anthropic-ratelimit-requests-remaining"])
        <= (first - 1 + refilled)
    )
    assert "anthropic-ratelimit-tokens-limit" not in created.headers
    message = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    # The Messages API has its own bucket: two batch calls did not spend from it.
    limit = int(message.headers["anthropic-ratelimit-requests-limit"])
    assert int(message.headers["anthropic-ratelimit-requests-remaining"]) == limit - 1


def _queued_creates(emu: Emulator, client: anthropic.Anthropic) -> anthropic.RateLimitError:
    """Fill a queue of 30 with 20 requests, then have a create of 11 refused."""
    emu.queue_limit = 30
    emu.processing_seconds = 2.5
    client.messages.batches.create(requests=small_requests(20))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.with_options(max_retries=0).messages.batches.create(
            requests=small_requests(11, prefix="s")
        )
    return caught.value


def test_a_create_past_the_queue_limit_is_refused_with_429(client, emu):
    err = _queued_creates(emu, client)
    assert err.status_code == 429
    assert err.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "limit of 30 batch requests" in err.message
    assert "20 queued, 11 in this request" in err.message
    assert emu.creates.refused == [11]
    assert len(emu.batches) == 1  # nothing was made of it
    # The queue empties when the first batch ends, 2.5 s after its create: whole seconds.
    assert err.response.headers["retry-after"] in ("2", "3")
    for name in REQUESTS:  # the per-minute limits are reported as on any answer
        assert name in err.response.headers


def test_a_create_that_fits_the_room_left_is_accepted(client, emu):
    _queued_creates(emu, client)
    batch = client.messages.batches.create(requests=small_requests(10, prefix="t"))
    assert batch.processing_status == "in_progress"
    assert emu.store.queued() == 30


def test_room_comes_back_when_batches_end(client, emu):
    _queued_creates(emu, client)
    emu.clock.advance(3)
    batch = client.messages.batches.create(requests=small_requests(11, prefix="s"))
    assert batch.request_counts.processing == 11
    assert emu.store.queued() == 11


def test_canceling_batches_still_hold_their_room(client, emu):
    emu.queue_limit = 10
    emu.processing_seconds = 60
    emu.cancel_seconds = 5
    batch = client.messages.batches.create(requests=small_requests(10))
    client.messages.batches.cancel(batch.id)
    with pytest.raises(anthropic.RateLimitError):
        client.with_options(max_retries=0).messages.batches.create(requests=small_requests(1))
    emu.clock.advance(6)  # canceled: ended
    client.messages.batches.create(requests=small_requests(1))


def test_a_batch_larger_than_the_whole_queue_is_refused_even_when_it_is_empty(client, emu):
    emu.queue_limit = 5
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.with_options(max_retries=0).messages.batches.create(requests=small_requests(6))
    assert "limit of 5 batch requests" in caught.value.message
    assert "0 queued, 6 in this request" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "1"


def test_the_envelope_is_checked_before_the_queue(client, emu):
    emu.queue_limit = 1
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a b", "params": {}}] * 2)


def test_the_queue_limit_must_be_a_positive_whole_number():
    with pytest.raises(ValueError):
        Emulator(queue_limit=0)
    with pytest.raises(TypeError):
        Emulator(queue_limit=2.5)  # type: ignore[arg-type]


def test_cli_queue_limit_refuses_a_create_past_it():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from batchmark.cli import main; main()", "emulator"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--processing-seconds", "30", "--queue-limit", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        with sdk_client(base_url, max_retries=0) as client:
            client.messages.batches.create(requests=small_requests(2))
            with pytest.raises(anthropic.RateLimitError) as caught:
                client.messages.batches.create(requests=small_requests(2, prefix="s"))
        assert "limit of 3 batch requests" in caught.value.message
        assert int(caught.value.response.headers["retry-after"]) >= 29
    finally:
        process.terminate()
        process.communicate(timeout=15)
