"""Answers for `batchmark run configs/tool_use.yaml --emulate` (CC0).

A stand-in for two models calling tools: each question has the calls a careful model
makes; the smaller model slips on a few (a wrong unit, a dropped call, an extra
argument, a lower-case code), and both say a sentence before calling, as real models
do. A model only calls tools the request offers; offered none that fit, it answers in
text. The emulator adds ids, stop reasons and usage.
"""

from __future__ import annotations

import re
from typing import Any


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": name, "input": arguments}


def _fx(amount: float, source: str, target: str) -> dict[str, Any]:
    return _call("convert_currency", amount=amount, **{"from": source, "to": target})


# (pattern in the question, what a careful model says and calls, what the small one does)
CARDS: list[
    tuple[str, tuple[str, list[dict[str, Any]]], tuple[str, list[dict[str, Any]]] | None]
] = [
    (
        r"weather .* Paris",
        ("I'll check the weather in Paris.", [_call("get_weather", city="Paris", unit="celsius")]),
        None,
    ),
    (
        r"New York",
        ("Let me look up New York.", [_call("get_weather", city="New York", unit="fahrenheit")]),
        ("Let me look up New York.", [_call("get_weather", city="New York", unit="celsius")]),
    ),
    (
        r"Tokyo",
        ("Checking Tokyo.", [_call("get_weather", city="Tokyo", unit="celsius")]),
        None,
    ),
    (r"yen", ("Converting.", [_fx(250, "EUR", "JPY")]), ("Converting.", [_fx(250, "eur", "JPY")])),
    (r"British pounds", ("Converting.", [_fx(99.5, "USD", "GBP")]), None),
    (
        r"Swiss francs",
        ("Two conversions.", [_fx(100, "CHF", "USD"), _fx(100, "CHF", "EUR")]),
        ("Converting to euros.", [_fx(100, "CHF", "EUR")]),
    ),
    (
        r"Team standup",
        (
            "Adding it.",
            [_call("create_event", title="Team standup", date="2027-03-01", time="09:30")],
        ),
        None,
    ),
    (
        r"Dentist",
        ("Adding it.", [_call("create_event", title="Dentist", date="2027-02-14")]),
        ("Adding it.", [_call("create_event", title="Dentist", date="2027-02-14", time="09:00")]),
    ),
    (
        r"Lisbon",
        (
            "Searching.",
            [_call("search_flights", origin="LIS", destination="BER", date="2027-04-10")],
        ),
        None,
    ),
    (
        r"Oslo .* Rome",
        (
            "Flights first, then the weather.",
            [
                _call("search_flights", origin="OSL", destination="FCO", date="2027-05-02"),
                _call("get_weather", city="Rome", unit="celsius"),
            ],
        ),
        (
            "Searching flights.",
            [_call("search_flights", origin="OSL", destination="FCO", date="2027-05-02")],
        ),
    ),
    (r"penguins", ("Why don't penguins fly? They can't afford the tickets.", []), None),
    (r"17 times 3", ("51", []), ("51", [_fx(17, "USD", "USD")])),
]


def answer(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The reply to one request: a sentence, then the tool calls."""
    question = params["messages"][-1]["content"]
    offered = {tool["name"] for tool in params.get("tools") or []}
    small = str(params["model"]).startswith("claude-haiku")
    for pattern, careful, slip in CARDS:
        if re.search(pattern, question):
            text, calls = slip if small and slip is not None else careful
            calls = [c for c in calls if c["name"] in offered]
            return [{"type": "text", "text": text}, *calls]
    return [{"type": "text", "text": "I can't help with that."}]
