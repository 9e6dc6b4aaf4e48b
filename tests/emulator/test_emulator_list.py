"""Listing batches: newest first, cursors both ways, exactly as the SDK paginates."""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatch

from .support import HEADERS, assert_strict, small_requests


@pytest.fixture
def ids(client) -> list[str]:
    """Seven batches, oldest first."""
    return [client.messages.batches.create(requests=small_requests(1)).id for _ in range(7)]


def test_auto_pagination_walks_every_batch_newest_first(client, ids):
    listed = [b.id for b in client.messages.batches.list(limit=2)]
    assert listed == ids[::-1]


def test_pages_carry_first_last_and_has_more(client, ids):
    page = client.messages.batches.list(limit=3)
    assert [b.id for b in page.data] == ids[::-1][:3]
    assert page.first_id == ids[-1] and page.last_id == ids[-3] and page.has_more
    last = client.messages.batches.list(limit=3, after_id=ids[1])
    assert [b.id for b in last.data] == [ids[0]] and last.has_more is False


def test_before_id_pages_toward_newer_batches(client, ids):
    page = client.messages.batches.list(limit=2, before_id=ids[0])
    assert [b.id for b in page.data] == [ids[2], ids[1]] and page.has_more
    walked = [b.id for b in client.messages.batches.list(limit=2, before_id=ids[0])]
    assert sorted(walked) == sorted(ids[1:])
    assert walked[:2] == [ids[2], ids[1]]


def test_default_limit_is_20(client):
    for _ in range(21):
        client.messages.batches.create(requests=small_requests(1))
    page = client.messages.batches.list()
    assert len(page.data) == 20 and page.has_more


def test_raw_page_is_strict(base_url, ids):
    with httpx2.Client() as http:
        data = http.get(f"{base_url}/v1/messages/batches?limit=2", headers=HEADERS).json()
    assert set(data) == {"data", "has_more", "first_id", "last_id"}
    for item in data["data"]:
        assert_strict(item, MessageBatch)


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_out_of_range_is_a_400(client, limit):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.list(limit=limit)


def test_empty_list(client):
    page = client.messages.batches.list()
    assert page.data == [] and page.has_more is False and page.first_id is None
