"""Validation: auth, versions, the create envelope, limits, and per-request params errors."""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatchIndividualResponse

from batchmark.emulator import Emulator

from .support import HEADERS, assert_strict, read_results, sdk_client, small_requests


def _raw(base_url: str, method: str, path: str, headers: dict[str, str], **kwargs):
    with httpx2.Client() as http:
        return http.request(method, base_url + path, headers=headers, **kwargs)


def test_missing_credentials_is_a_401(base_url):
    response = _raw(base_url, "GET", "/v1/messages/batches", {"anthropic-version": "2023-06-01"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["content-type"] == "application/json"


def test_bearer_without_a_token_is_a_401(base_url):
    headers = {"Authorization": "Bearer", "anthropic-version": "2026-10-21"}
    response = _raw(base_url, "GET", "/v1/messages/batches", headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer k", "anthropic-version": "2026-10-21"},
        {
            "x-api-key": "k",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "message-batches-2024-09-24",
            "anthropic-workspace-id": "wrkspc_1",
            "x-stainless-lang": "python",
        },
    ],
)
def test_both_auth_headers_and_versions_are_accepted(base_url, headers):
    response = _raw(base_url, "GET", "/v1/messages/batches?beta=true", headers)
    assert response.status_code == 200


def test_unknown_api_version_is_a_400(base_url):
    headers = {"x-api-key": "k", "anthropic-version": "2020-01-01"}
    assert _raw(base_url, "GET", "/v1/messages/batches", headers).status_code == 400


def test_unknown_route_answers_in_the_envelope(base_url):
    response = _raw(base_url, "GET", "/v1/nothing", HEADERS)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert response.headers["request-id"].startswith("req_")


def _create_error(client: anthropic.Anthropic, requests: object) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


@pytest.mark.parametrize(
    ("custom_id", "expected"),
    [
        ("x" * 65, "requests.3.custom_id: String should have at most 64 characters"),
        ("has space", "requests.3.custom_id: String should match pattern"),
        ("", "requests.3.custom_id: String should have at least 1 character"),
        (None, "requests.3.custom_id: Field required"),
    ],
)
def test_bad_custom_id_is_a_400_naming_its_path(client, custom_id, expected):
    requests = small_requests(5)
    requests[3]["custom_id"] = custom_id
    assert _create_error(client, requests).startswith(expected)


def test_longest_allowed_custom_id_is_accepted(client):
    requests = small_requests(1)
    requests[0]["custom_id"] = "A-_9" * 16
    assert client.messages.batches.create(requests=requests).request_counts.processing == 1


def test_duplicate_custom_id_names_both_indices(client):
    requests = small_requests(4)
    requests[3]["custom_id"] = "r1"
    message = _create_error(client, requests)
    assert "requests.3.custom_id" in message and "requests.1.custom_id" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [(None, "requests.0.params: Field required"), ([], "requests.0.params: Input should be")],
)
def test_missing_or_bad_params_is_a_400(client, params, expected):
    requests: list[dict] = [{"custom_id": "a"}]
    if params is not None:
        requests[0]["params"] = params
    assert _create_error(client, requests).startswith(expected)


def test_empty_batch_is_a_400(client):
    assert "at least 1 item" in _create_error(client, [])


def test_more_than_100k_requests_is_a_400(client):
    requests = [{"custom_id": f"c{i}", "params": {}} for i in range(100_001)]
    assert "at most 100000 items" in _create_error(client, requests)


def test_batch_body_over_the_limit_is_a_413():
    emu = Emulator(max_batch_bytes=2_000)
    with emu.serve() as url, sdk_client(url, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.batches.create(requests=small_requests(40))
        assert caught.value.status_code == 413
        assert caught.value.body["error"]["type"] == "request_too_large"
        assert client.messages.batches.create(requests=small_requests(1)).id


def test_message_body_over_the_limit_is_a_413():
    emu = Emulator(max_message_bytes=1_000)
    with emu.serve() as url, sdk_client(url, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "x" * 2_000}],
            )
        assert caught.value.status_code == 413


BAD_PARAMS = {
    "no-model": ({"max_tokens": 5}, "model: Field required"),
    "no-max": ({"model": "claude-haiku-4-5"}, "max_tokens: Field required"),
    "zero-max": ({"model": "claude-haiku-4-5", "max_tokens": 0}, "max_tokens: Input should be"),
    "stream": ({"model": "claude-haiku-4-5", "max_tokens": 5, "stream": True}, "stream:"),
    "temperature": (
        {"model": "claude-haiku-4-5", "max_tokens": 5, "temperature": 0.2},
        "temperature:",
    ),
    "top-k": ({"model": "claude-haiku-4-5", "max_tokens": 5, "top_k": 3}, "top_k:"),
}
MESSAGES = [{"role": "user", "content": "hi"}]
HEADERS_2026 = {"authorization": "Bearer k", "anthropic-version": "2026-10-21"}


def test_params_errors_come_back_as_errored_lines_not_a_failed_create(client):
    requests = [
        {"custom_id": name, "params": {**params, "messages": MESSAGES}}
        for name, (params, _) in BAD_PARAMS.items()
    ]
    requests.append(
        {"custom_id": "no-messages", "params": {"model": "claude-haiku-4-5", "max_tokens": 5}}
    )
    bad_role = [{"role": "robot", "content": "x"}]  # system is a role (SystemMessageParam)
    requests.append(
        {
            "custom_id": "bad-role",
            "params": {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": bad_role},
        }
    )
    requests.append(
        {
            "custom_id": "good",
            "params": {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGES},
        }
    )
    batch = client.messages.batches.create(requests=requests)
    assert client.messages.batches.retrieve(batch.id).request_counts.errored == len(requests) - 1
    lines = {line.custom_id: line for line in read_results(client, batch.id)}
    assert lines["good"].result.type == "succeeded"
    for name, (_, expected) in BAD_PARAMS.items():
        error = lines[name].result.error
        assert error.error.type == "invalid_request_error"
        assert error.error.message.startswith(expected)
        assert error.request_id.startswith("req_")
        assert_strict(lines[name].to_dict(), MessageBatchIndividualResponse)
    assert lines["no-messages"].result.error.error.message.startswith("messages: Field required")
    assert lines["bad-role"].result.error.error.message.startswith("messages.0.role:")


def test_sampling_params_are_accepted_with_api_version_2023_06_01(client):
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 5,
        "messages": MESSAGES,
        "temperature": 0.0,
    }
    batch = client.messages.batches.create(
        requests=[{"custom_id": "t", "params": params}],
        extra_headers={"anthropic-version": "2023-06-01"},
    )
    assert client.messages.batches.retrieve(batch.id).request_counts.succeeded == 1


@pytest.mark.parametrize("name", list(BAD_PARAMS))
def test_params_errors_on_messages_are_a_synchronous_400(base_url, name):
    # Raw HTTP: the SDK refuses some of these shapes client-side (a TypeError).
    params, expected = BAD_PARAMS[name]
    response = _raw(
        base_url, "POST", "/v1/messages", HEADERS_2026, json={**params, "messages": MESSAGES}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(expected)


def test_a_system_message_of_text_is_answered_and_of_other_blocks_refused(client) -> None:
    """SDK 2.16's MessageParam has system messages, text only (SystemMessageParam)."""
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=system)
    assert message.content[0].type == "text"
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    bad = [{"role": "system", "content": [image]}, {"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.BadRequestError, match="system message takes text blocks only"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=bad)
