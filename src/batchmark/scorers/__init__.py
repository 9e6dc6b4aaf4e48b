"""Scorers: turn responses into per-item scores.

A scorer has a ``name`` (its column) and is of one of three kinds (``ScorerKind``):

- plain (``ScorerOptions``, a function, any object with ``score``): ``score(ctx:
  ScoreContext) -> Score``, a pure function of one item;
- batched (``BatchedScorer``; ``JudgeScorer`` is one): ``build_request(ctx)`` per item,
  sent as a second batch, then ``parse(ctx, answer)`` per answer;
- combining (``CombiningScorer``; ``JudgePanel`` is one): ``combine(scores, ctx)`` over
  the item's scores from the scorers it ``depends_on``.

Configs list them under ``scorers:``; ``build_scorers`` validates the list eagerly and
returns a ``ScorerSet``: the scorers as written, sorted once by kind, each with its spec
hash. ``register_scorer`` and the ``batchmark.scorers`` entry point group add scorer
types; the built-ins register the same way.

Example::

    from pathlib import Path
    from batchmark.scorers import ScoreContext, build_scorers

    [exact] = build_scorers([{"exact_match": {"target": "{{ label }}"}}], base_dir=Path("."))
    ctx = ScoreContext(row={"label": "4"}, row_id="r1", variant="v", model_key="m", epoch=0,
                       request={}, response={"status": "succeeded", "text": " 4 "})
    exact.score(ctx)  # Score(value=1.0, passed=True, ...)
"""

from batchmark.scorers._agreement import agreement, cohen_kappa
from batchmark.scorers._base import Score, ScoreContext, Scorer, ScorerKind, ScorerOptions
from batchmark.scorers._build import build_scorers, scorers_json_schema
from batchmark.scorers._custom import FunctionScorer
from batchmark.scorers._json import JsonSchema
from batchmark.scorers._judge import VERDICT_TOOL, JudgeScorer, prompt_text
from batchmark.scorers._kinds import BatchedScorer, CombiningScorer, kind_of
from batchmark.scorers._match import Choice, ExactMatch, Includes, Numeric, RegexMatch
from batchmark.scorers._panel import JudgePanel
from batchmark.scorers._registry import ENTRY_POINT_GROUP, register_scorer, registered_scorers
from batchmark.scorers._set import ScorerSet
from batchmark.scorers._tool_call import ToolCall

__all__ = [
    "agreement",
    "BatchedScorer",
    "build_scorers",
    "Choice",
    "cohen_kappa",
    "CombiningScorer",
    "ENTRY_POINT_GROUP",
    "ExactMatch",
    "FunctionScorer",
    "Includes",
    "JsonSchema",
    "JudgePanel",
    "JudgeScorer",
    "kind_of",
    "Numeric",
    "prompt_text",
    "RegexMatch",
    "register_scorer",
    "registered_scorers",
    "Score",
    "ScoreContext",
    "Scorer",
    "ScorerKind",
    "ScorerOptions",
    "scorers_json_schema",
    "ScorerSet",
    "ToolCall",
    "VERDICT_TOOL",
]
