"""Helpers for the scorer tests: contexts and responses built in one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchmark.scorers import Score, ScoreContext, Scorer, build_scorers


def response(text: str | None = "", status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    """A normalized response record."""
    record: dict[str, Any] = {
        "status": status,
        "text": text,
        "tool_calls": [],
        "stop_reason": "end_turn" if status == "succeeded" else None,
        "error_type": None,
        "error_message": None,
    }
    record.update(extra)
    return record


def ctx(
    text: str | None = "",
    row: dict[str, Any] | None = None,
    *,
    status: str = "succeeded",
    request: dict[str, Any] | None = None,
    **extra: Any,
) -> ScoreContext:
    """A context for one item of row ``row`` answered with ``text``."""
    return ScoreContext(
        row=row or {},
        row_id="row-1",
        variant="v1",
        model_key="haiku",
        epoch=0,
        request=request or {"messages": [{"role": "user", "content": "Question?"}]},
        response=response(text, status, **extra),
    )


def one(item: Any, base_dir: Path | None = None) -> Scorer:
    """Build the single scorer a config item describes."""
    [scorer] = build_scorers([item], base_dir=base_dir or Path("."))
    return scorer


def score(item: Any, text: str | None, row: dict[str, Any] | None = None, **kw: Any) -> Score:
    """Build a scorer and score one response with it."""
    return one(item).score(ctx(text, row, **kw))
