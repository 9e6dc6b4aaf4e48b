"""A batch's life through the real SDK: create, poll, results, cancel, delete, expiry."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import httpx2
import pytest
from anthropic.types.messages import DeletedMessageBatch, MessageBatch

from batchmark.emulator import Emulator

from .support import HEADERS, assert_strict, read_results, small_requests, strict_lines


def _total(batch: MessageBatch) -> int:
    c = batch.request_counts
    return c.processing + c.succeeded + c.errored + c.canceled + c.expired


def test_create_answers_in_progress_with_every_request_processing(client, emu):
    raw = client.messages.batches.with_raw_response.create(requests=small_requests(3))
    data = raw.http_response.json()
    assert_strict(data, MessageBatch)
    batch = raw.parse()
    assert raw.http_response.headers["request-id"].startswith("req_")
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and _total(batch) == 3
    assert batch.results_url is None and batch.ended_at is None
    assert batch.expires_at - batch.created_at == timedelta(hours=24)


def test_batch_ends_after_processing_seconds_on_the_emulator_clock(client, emu):
    emu.processing_seconds = 600.0
    batch = client.messages.batches.create(requests=small_requests(5))
    polled = client.messages.batches.retrieve(batch.id)
    assert polled.processing_status == "in_progress"
    assert polled.request_counts.processing == 5 and polled.results_url is None
    emu.clock.advance(601)
    raw = client.messages.batches.with_raw_response.retrieve(batch.id)
    assert_strict(raw.http_response.json(), MessageBatch)
    ended = raw.parse()
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 5 and _total(ended) == 5
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at


def test_results_url_is_absolute_on_the_emulators_own_base_url(client, base_url):
    batch = client.messages.batches.create(requests=small_requests(2))
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.results_url == f"{base_url}/v1/messages/batches/{batch.id}/results"


def test_results_come_back_once_per_custom_id_and_strictly_typed(client):
    batch = client.messages.batches.create(requests=small_requests(20))
    lines = read_results(client, batch.id)
    assert sorted(line.custom_id for line in lines) == sorted(f"r{i}" for i in range(20))
    assert all(line.result.type == "succeeded" for line in lines)
    raw = strict_lines(client, batch.id)
    assert [line["custom_id"] for line in raw] != [f"r{i}" for i in range(20)]  # shuffled
    message = raw[0]["result"]["message"]
    assert message["id"].startswith("msg_") and message["usage"]["service_tier"] == "batch"


def test_results_are_reproducible_across_downloads(client):
    batch = client.messages.batches.create(requests=small_requests(10))
    assert strict_lines(client, batch.id) == strict_lines(client, batch.id)


def test_results_before_the_end_are_refused(client, emu, base_url):
    emu.processing_seconds = 100.0
    batch = client.messages.batches.create(requests=small_requests(1))
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)
    with httpx2.Client() as http:
        response = http.get(f"{base_url}/v1/messages/batches/{batch.id}/results", headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_cancel_reports_canceling_then_ends_with_canceled_and_finished_requests(client, emu):
    emu.processing_seconds = 100.0
    batch = client.messages.batches.create(requests=small_requests(50))
    emu.clock.advance(50)
    raw = client.messages.batches.with_raw_response.cancel(batch.id)
    assert_strict(raw.http_response.json(), MessageBatch)
    canceling = raw.parse()
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == 50
    ended = client.messages.batches.retrieve(batch.id)
    counts = ended.request_counts
    assert ended.processing_status == "ended"
    assert counts.canceled > 0 and counts.succeeded > 0
    assert counts.canceled + counts.succeeded == 50
    kinds = {line.custom_id: line.result.type for line in read_results(client, batch.id)}
    assert sorted(kinds.values()).count("canceled") == counts.canceled


def test_cancel_can_be_observed_as_canceling_while_cancel_seconds_last(client, emu):
    emu.processing_seconds = 100.0
    emu.cancel_seconds = 5.0
    batch = client.messages.batches.create(requests=small_requests(3))
    client.messages.batches.cancel(batch.id)
    assert client.messages.batches.retrieve(batch.id).processing_status == "canceling"
    emu.clock.advance(6)
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"


def test_cancel_of_an_ended_batch_is_a_400(client):
    batch = client.messages.batches.create(requests=small_requests(1))
    client.messages.batches.retrieve(batch.id)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.cancel(batch.id)


def test_delete_an_ended_batch_then_it_is_gone(client):
    batch = client.messages.batches.create(requests=small_requests(1))
    raw = client.messages.batches.with_raw_response.delete(batch.id)
    assert_strict(raw.http_response.json(), DeletedMessageBatch)
    assert raw.parse() == DeletedMessageBatch(id=batch.id, type="message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_delete_before_the_end_is_a_400(client, emu):
    emu.processing_seconds = 100.0
    batch = client.messages.batches.create(requests=small_requests(1))
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.delete(batch.id)
    assert caught.value.body["error"]["type"] == "invalid_request_error"


def test_unknown_batch_is_a_404_in_the_error_envelope(client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.batches.retrieve("msgbatch_nope")
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == caught.value.request_id
    assert caught.value.request_id.startswith("req_")


def test_unfinished_requests_expire_at_batch_ttl(served):
    with served(processing_seconds=100.0, batch_ttl_seconds=30.0) as (emu, client):
        batch = client.messages.batches.create(requests=small_requests(40))
        assert batch.expires_at - batch.created_at == timedelta(seconds=30)
        emu.clock.advance(31)
        ended = client.messages.batches.retrieve(batch.id)
        counts = ended.request_counts
        assert ended.processing_status == "ended"
        assert counts.expired > 0 and counts.succeeded > 0
        assert counts.expired + counts.succeeded == 40
        results = read_results(client, batch.id)
        assert sum(r.result.type == "expired" for r in results) == counts.expired


def test_batches_are_archived_after_29_days(client, emu):
    batch = client.messages.batches.create(requests=small_requests(1))
    emu.clock.advance(30 * 86400)
    assert client.messages.batches.retrieve(batch.id).archived_at is not None
    with pytest.raises(anthropic.NotFoundError):
        read_results(client, batch.id)


def test_submitted_custom_ids_keep_repeats_across_batches(client, emu):
    client.messages.batches.create(requests=small_requests(2))
    client.messages.batches.create(requests=small_requests(1))
    assert emu.submitted_custom_ids() == ["r0", "r1", "r0"]
    assert [b.custom_ids for b in emu.batches.values()] == [["r0", "r1"], ["r0"]]


def test_ids_are_reproducible_for_a_seed():
    def first_batch_id() -> str:
        emu = Emulator(seed=3)
        with emu.serve() as url, anthropic.Anthropic(base_url=url, api_key="k") as client:
            return client.messages.batches.create(requests=small_requests(1)).id

    assert first_batch_id() == first_batch_id()
