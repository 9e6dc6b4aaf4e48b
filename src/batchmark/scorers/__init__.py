"""Scorers: turn responses into per-item scores.

A scorer has a ``name`` (its column) and ``score(ctx: ScoreContext) -> Score``, a pure
function of one item. Configs list them under ``scorers:``; ``build_scorers`` validates
the list eagerly and returns the scorers. Judges (``JudgeScorer``) score through a batch
of their own: ``build_request`` per item, then ``parse`` per judge response; a
``JudgePanel`` combines judges. ``register_scorer`` and the ``batchmark.scorers`` entry
point group add scorer types; the built-ins register the same way.

Example::

    from pathlib import Path
    from batchmark.scorers import ScoreContext, build_scorers

    [exact] = build_scorers([{"exact_match": {"target": "{{ label }}"}}], base_dir=Path("."))
    ctx = ScoreContext(row={"label": "4"}, row_id="r1", variant="v", model_key="m", epoch=0,
                       request={}, response={"status": "succeeded", "text": " 4 "})
    exact.score(ctx)  # Score(value=1.0, passed=True, ...)
"""

from batchmark.scorers._agreement import agreement, cohen_kappa
from batchmark.scorers._base import Score, ScoreContext, Scorer, ScorerOptions
from batchmark.scorers._build import build_scorers, scorers_json_schema
from batchmark.scorers._custom import FunctionScorer
from batchmark.scorers._json import JsonSchema
from batchmark.scorers._judge import VERDICT_TOOL, JudgeScorer, judge_custom_id, prompt_text
from batchmark.scorers._match import Choice, ExactMatch, Includes, Numeric, RegexMatch
from batchmark.scorers._panel import JudgePanel
from batchmark.scorers._registry import ENTRY_POINT_GROUP, register_scorer, registered_scorers

__all__ = [
    "agreement",
    "build_scorers",
    "Choice",
    "cohen_kappa",
    "ENTRY_POINT_GROUP",
    "ExactMatch",
    "FunctionScorer",
    "Includes",
    "JsonSchema",
    "judge_custom_id",
    "JudgePanel",
    "JudgeScorer",
    "Numeric",
    "prompt_text",
    "RegexMatch",
    "register_scorer",
    "registered_scorers",
    "Score",
    "ScoreContext",
    "Scorer",
    "ScorerOptions",
    "scorers_json_schema",
    "VERDICT_TOOL",
]
