"""Scoring throughput of the deterministic scorers (items per second, one core).

Run: ``python benchmarks/scoring_throughput.py [--items N] [--repeat R] [--no-readme]``
(defaults: ``--items 100000 --repeat 3``). The figures are printed, then written to the
``scoring_throughput`` block of the README's performance section (unless ``--no-readme``).

For each scorer, N synthetic items (a dataset row, the request that was sent, a
normalized response record) are built first, untimed; then only ``scorer.score(ctx)``
over all of them is timed, and the best of R runs is reported. The responses are a
realistic mix for each scorer: mostly short answers, some long ones (a few hundred
words of reasoning before the answer), about 5% errored responses, passes and failures
both. Scorers are built with ``build_scorers`` exactly as from a config:

- ``exact_match``: target ``{{ label }}``, every normalizer (NFKC, lower, punctuation,
  whitespace, strip), answers with accents, punctuation and fullwidth letters;
- ``includes``: the city name in a sentence, ``lower``;
- ``regex``: ``(?i)answer:\\s*(?P<answer>\\w+)`` compared with the row's target;
- ``numeric``: formatted numbers ("1,234.5", "-3e2", "12%") in prose, last number;
- ``choice``: "The answer is (C)", bare letters, option lines;
- ``json_schema``: a 6-property object schema, JSON as the whole text, in a fenced
  block, inside prose, and broken JSON.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report

from batchmark.scorers import Score, ScoreContext, build_scorers

CITIES = ["Paris", "São Paulo", "Zürich", "Tokyo", "New York", "Reykjavík", "Cairo", "Lima"]
FILLER = "Let me think about this step by step, weighing each option carefully. "
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"},
        "active": {"type": "boolean"},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


def _response(rng: random.Random, text: str) -> dict[str, Any]:
    if rng.random() < 0.05:
        return {"status": "errored", "text": None, "tool_calls": [], "error_type": "api_error"}
    if rng.random() < 0.1:
        text = FILLER * rng.randint(5, 40) + text
    return {"status": "succeeded", "text": text, "tool_calls": [], "stop_reason": "end_turn"}


def _exact(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    city = rng.choice(CITIES)
    said = rng.choice([city, city.upper() + ".", f"  {city}!\n", "ｔｏｋｙｏ", rng.choice(CITIES)])
    return {"label": city, "id": i}, said


def _includes(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    city = rng.choice(CITIES)
    return {"label": city}, f"I am fairly sure the answer is {rng.choice(CITIES)}, of course."


def _regex(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    word = rng.choice(["alpha", "beta", "gamma", "delta"])
    said = rng.choice(["alpha", "beta", "gamma", "delta"])
    return {"target": word}, f"Reasoning here.\nAnswer: {said}"


def _numeric(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    value = rng.choice([1234.5, -300, 12, 0.25, 10**12, 3.14159])
    said = value if rng.random() < 0.7 else value + 1
    shown = rng.choice([f"{said:,}", f"{said:e}", f"{said}", f"{said}%"])
    return {"answer": value}, f"First 3 apples, then {rng.randint(1, 99)} more; total {shown}."


def _choice(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    letter = rng.choice("ABCD")
    said = rng.choice("ABCD")
    text = rng.choice(
        [said, f"The answer is ({said}).", f"{said}) because it fits", f"Hmm. Answer: {said}"]
    )
    return {"answer": letter}, text


def _json(rng: random.Random, i: int) -> tuple[dict[str, Any], str]:
    age = rng.randint(-2, 90)
    body = f'{{"name": "Ada", "age": {age}, "tags": ["x", "y"], "score": 0.5, "active": true}}'
    text = rng.choice(
        [body, f"Here it is:\n```json\n{body}\n```", f"Sure! {body} Anything else?", body[:-3]]
    )
    return {}, text


CASES: list[tuple[str, dict[str, Any], Callable[[random.Random, int], tuple[dict, str]]]] = [
    ("exact_match", {"exact_match": {"target": "{{ label }}", "normalize": True}}, _exact),
    ("includes", {"includes": {"target": "{{ label }}", "normalize": ["lower"]}}, _includes),
    (
        "regex",
        {"regex": {"pattern": r"(?i)answer:\s*(?P<answer>\w+)", "target": "{{ target }}"}},
        _regex,
    ),
    ("numeric", {"numeric": {"target": "{{ answer }}"}}, _numeric),
    ("choice", {"choice": {"target": "{{ answer }}"}}, _choice),
    ("json_schema", {"json_schema": {"schema": SCHEMA}}, _json),
]


def contexts(make: Callable[[random.Random, int], tuple[dict, str]], n: int) -> list[ScoreContext]:
    rng = random.Random(1234)
    request = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Q?"}]}
    out = []
    for i in range(n):
        row, text = make(rng, i)
        out.append(ScoreContext(row, f"r{i}", "v", "m", 0, request, _response(rng, text)))
    return out


def measure(item: dict[str, Any], items: list[ScoreContext], repeat: int) -> tuple[float, float]:
    """Best seconds over ``repeat`` runs, and the share of items that passed."""
    [scorer] = build_scorers([item], base_dir=Path("."))
    best = float("inf")
    results: list[Score] = []
    for _ in range(repeat):
        started = time.perf_counter()
        results = [scorer.score(ctx) for ctx in items]
        best = min(best, time.perf_counter() - started)
    passed = sum(1 for r in results if r.passed) / len(results)
    return best, passed


PACKAGES = ("batchmark", "pydantic", "jinja2", "jsonschema")


def readme_block(items: int, repeat: int, results: list[tuple[str, float, float]]) -> list[str]:
    """The README block: one row per scorer (rate, time per item, pass share), the machine."""
    rows = [
        (f"`{name}`", f"{rate:,.0f}", f"{1e6 / rate:.2f}", f"{passed:.0%}")
        for name, rate, passed in results
    ]
    return [
        "**Scoring throughput** (`benchmarks/scoring_throughput.py`): deterministic scorers, "
        f"{items:,} synthetic items each, one core, best of {repeat}.",
        "",
        *_report.table(("scorer", "items/s", "µs/item", "passed"), rows),
        "",
        _report.machine_summary(PACKAGES),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)

    for line in _report.machine_lines(PACKAGES):
        print(line)
    print(f"items:    {args.items:,} per scorer, best of {args.repeat}\n")
    print(f"{'scorer':<12} {'items/s':>12} {'µs/item':>9} {'passed':>7}")
    results: list[tuple[str, float, float]] = []
    for name, item, make in CASES:
        items = contexts(make, args.items)
        seconds, passed = measure(item, items, args.repeat)
        rate = args.items / seconds
        results.append((name, rate, passed))
        print(f"{name:<12} {rate:>12,.0f} {1e6 / rate:>9.2f} {passed:>7.0%}", flush=True)
    if args.readme:
        block = readme_block(args.items, args.repeat, results)
        path = _report.write_block("scoring_throughput", block)
        print(f"\nwritten:  {path.name}, block scoring_throughput")


if __name__ == "__main__":
    main()
