"""A full-size batch: 100,000 requests created, ended and streamed back through the SDK."""

from __future__ import annotations

from .support import small_requests

N = 100_000


def test_100k_requests_stream_back_exactly_once_and_shuffled(client):
    requests = [{"custom_id": f"r{i}", "params": small_requests(1)[0]["params"]} for i in range(N)]
    batch = client.messages.batches.create(requests=requests)
    del requests
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == N
    seen: list[str] = []
    decoder = client.messages.batches.results(batch.id)
    try:
        seen.extend(line.custom_id for line in decoder)
    finally:
        decoder.close()
    assert len(seen) == N and len(set(seen)) == N
    assert set(seen) == {f"r{i}" for i in range(N)}
    in_order = sum(seen[i] == f"r{i}" for i in range(N))
    assert in_order < 100  # shuffled, not submission order
