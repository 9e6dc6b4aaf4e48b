"""Fault injection: HTTP errors the SDK retries, cut streams, transient 404s, bad outcomes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import anthropic
import httpx2
import pytest

from batchmark import ConfigError
from batchmark.emulator import ENDPOINTS, Emulator, Faults, parse_faults

from .support import read_results, sdk_client, small_requests


@pytest.mark.parametrize("status", [429, 500, 529])
def test_sdk_retries_recover_from_injected_http_errors(client, emu, status):
    emu.faults = Faults(**{f"http_{status}_next": 2}, retry_after_ms=10)
    started = time.monotonic()
    batch = client.messages.batches.create(requests=small_requests(1))
    assert batch.processing_status == "in_progress"
    assert time.monotonic() - started < 2.0  # retry-after-ms keeps the backoff short
    assert emu.fault_state.fired == {f"http_{status}": 2}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_without_retries_the_sdk_raises_the_matching_error(base_url, emu, status, error):
    emu.faults = Faults(**{f"http_{status}": 1.0})
    with sdk_client(base_url, max_retries=0) as client, pytest.raises(error) as caught:
        client.messages.batches.list()
    response = caught.value.response
    assert "retry-after-ms" not in response.headers  # not a header of the real API
    assert ("retry-after" in response.headers) == (status == 429)
    assert caught.value.request_id.startswith("req_")
    assert emu.fault_state.fired == {f"http_{status}": 1}


def test_an_injected_429_waits_whole_seconds_and_reports_the_limit_spent(base_url, emu):
    emu.faults = Faults(http_429=1.0, retry_after=3)
    with sdk_client(base_url, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.batches.with_raw_response.list()
    headers = caught.value.response.headers
    assert headers["retry-after"] == "3"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert int(headers["anthropic-ratelimit-requests-limit"]) > 0
    reset = datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"])
    assert 2 <= (reset - datetime.now(UTC)).total_seconds() <= 4


def test_retry_after_ms_is_an_opt_in_for_fast_tests(base_url, emu):
    emu.faults = Faults(http_529=1.0, retry_after_ms=10)
    with (
        sdk_client(base_url, max_retries=0) as client,
        pytest.raises(anthropic.OverloadedError) as caught,
    ):
        client.messages.batches.list()
    assert caught.value.response.headers["retry-after-ms"] == "10"


def test_http_faults_can_be_restricted_to_endpoints(base_url, emu):
    emu.faults = Faults(http_529=1.0, endpoints={"results"})
    with sdk_client(base_url, max_retries=0) as client:
        batch = client.messages.batches.create(requests=small_requests(1))
        assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
        with pytest.raises(anthropic.OverloadedError):
            read_results(client, batch.id)
    assert emu.fault_state.fired == {"http_529": 1}  # the results call only


def test_faults_can_be_cleared_on_a_live_emulator(base_url, emu):
    emu.faults = Faults(http_429=1.0)
    with sdk_client(base_url, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError):
            client.messages.batches.list()
        emu.faults = Faults()
        assert client.messages.batches.list().data == []
    assert emu.fault_state.fired == {"http_429": 1}  # counted before the clear, kept after


def test_http_fault_rates_are_seeded_and_reproducible():
    def pattern() -> list[bool]:
        emu = Emulator(seed=11, faults="http_500=0.5")
        with emu.serve() as url, sdk_client(url, max_retries=0) as client:
            outcomes = []
            for _ in range(12):
                try:
                    client.messages.batches.list()
                    outcomes.append(True)
                except anthropic.InternalServerError:
                    outcomes.append(False)
        assert emu.fault_state.fired == {"http_500": outcomes.count(False)}
        return outcomes

    first = pattern()
    assert first == pattern()
    assert True in first and False in first


def test_a_cut_results_stream_makes_the_sdk_raise(client, emu):
    emu.faults = Faults(drop_results_next=1, drop_after_lines=5)
    batch = client.messages.batches.create(requests=small_requests(50))
    client.messages.batches.retrieve(batch.id)
    decoder = client.messages.batches.results(batch.id)
    seen = []
    try:
        with pytest.raises(httpx2.RemoteProtocolError):
            for line in decoder:
                seen.append(line.custom_id)
    finally:
        decoder.close()
    assert 1 <= len(seen) <= 5  # the SDK's 64-byte re-chunking may hold back the tail
    assert len(read_results(client, batch.id)) == 50  # the next download is whole
    assert emu.fault_state.fired == {"drop_results": 1}


def test_transient_404_right_after_create(client, emu):
    emu.faults = Faults(not_found_after_create=2)
    batch = client.messages.batches.create(requests=small_requests(1))
    for _ in range(2):
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(batch.id)
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    assert emu.fault_state.fired == {"not_found_after_create": 2}


def test_a_404_of_a_batch_that_never_existed_is_not_counted_as_a_fault(client, emu):
    emu.faults = Faults(not_found_after_create=2)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
    assert emu.fault_state.fired == {}


def test_errored_and_expired_fractions_of_requests(client, emu):
    emu.faults = Faults(errored=0.2, errored_fatal=0.1, expired=0.1)
    batch = client.messages.batches.create(requests=small_requests(400))
    counts = client.messages.batches.retrieve(batch.id).request_counts
    assert 40 < counts.errored < 200 and 10 < counts.expired < 80
    assert counts.succeeded + counts.errored + counts.expired == 400
    types = [
        line.result.error.error.type
        for line in read_results(client, batch.id)
        if line.result.type == "errored"
    ]
    assert set(types) == {"overloaded_error", "api_error", "invalid_request_error"}
    assert emu.fault_state.fired == {
        "errored": types.count("overloaded_error") + types.count("api_error"),
        "errored_fatal": types.count("invalid_request_error"),
        "expired": counts.expired,
    }


def test_a_failed_request_can_succeed_when_resubmitted_in_a_new_batch(client, emu):
    emu.faults = Faults(errored=0.5)
    first = client.messages.batches.create(requests=small_requests(40))
    failed = {
        line.custom_id for line in read_results(client, first.id) if line.result.type == "errored"
    }
    again = [r for r in small_requests(40) if r["custom_id"] in failed]
    second = client.messages.batches.create(requests=again)
    retried = {line.custom_id: line.result.type for line in read_results(client, second.id)}
    assert "succeeded" in retried.values()
    failed_again = sum(t == "errored" for t in retried.values())
    assert emu.fault_state.fired == {"errored": len(failed) + failed_again}


def test_batch_outcome_faults_are_those_in_force_at_create(client, emu):
    emu.faults = Faults(errored=1.0)
    batch = client.messages.batches.create(requests=small_requests(3))
    emu.faults = Faults()
    assert client.messages.batches.retrieve(batch.id).request_counts.errored == 3
    assert emu.fault_state.fired == {"errored": 3}


def test_parse_faults_reads_the_compact_form():
    faults = parse_faults(
        "http_429=0.1,http_500=0.05,http_529=0.05,errored=0.05,errored_fatal=0.01,"
        "expired=0.02,drop_results=0.5,not_found_after_create=2,endpoints=create+retrieve"
    )
    assert faults.http_429 == 0.1 and faults.not_found_after_create == 2
    assert faults.endpoints == {"create", "retrieve"}


def test_parse_faults_reads_a_mapping_and_a_yaml_file(tmp_path):
    assert parse_faults({"http_529_next": 3, "endpoints": ["messages"]}) == Faults(
        http_529_next=3, endpoints={"messages"}
    )
    path = tmp_path / "faults.yaml"
    path.write_text("errored: 0.25\nendpoints: [list]\n")
    assert parse_faults(str(path)) == Faults(errored=0.25, endpoints={"list"})
    assert parse_faults(None) == Faults() == parse_faults("")
    assert Faults().endpoints == set(ENDPOINTS)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("bogus=1", "unknown fault 'bogus'"),
        ("http_429=2", "between 0 and 1"),
        ("errored=0.7,expired=0.5", "must not exceed 1"),
        ("endpoints=create+nope", "unknown endpoint"),
        ("not_found_after_create=1.5", "not_found_after_create"),
        ("http_429", "expected key=value"),
    ],
)
def test_bad_fault_specs_raise_config_error(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_faults(spec)
