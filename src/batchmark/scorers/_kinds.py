"""The scorer kinds beyond plain: batched scorers ask a model, combining scorers combine.

The harness runs a config's scorers in three steps, by kind (``ScorerKind``):

1. **plain** scorers score each item from its context: ``score(ctx)``;
2. **batched** scorers (``BatchedScorer``) ask a model about each item. Once the
   candidates' batches have ended, ``build_request(ctx)`` gives each item's Messages
   params; the requests of every batched scorer go out together, as a second batch,
   through the same machinery as the candidates' (ledger, cache, retries, resume), and
   ``parse(ctx, answer)`` turns each answer into the item's score. The judge is one;
3. **combining** scorers (``CombiningScorer``) combine an item's scores from the scorers
   they depend on: ``combine(scores, ctx)``, after those. The judge panel is one.

What every batched scorer would write the same way is the harness's: an item whose
candidate has no response fails (``no response: <status>``) and is not asked about; a
request that failed, or was never sent, makes the item's score invalid; ``parse`` only
sees answers that succeeded. A plugin ships a scorer of any kind by subclassing its base
and registering it (``register_scorer`` or the ``batchmark.scorers`` entry point group).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from batchmark.scorers._base import (
    Score,
    ScoreContext,
    Scorer,
    ScorerKind,
    ScorerOptions,
    no_response,
)

__all__ = ["BatchedScorer", "CombiningScorer", "kind_of"]


class BatchedScorer(ScorerOptions):
    """A scorer that asks a model about each item, through a second batch.

    Subclasses implement ``build_request`` and ``parse``. Their fields are their options,
    as for any ``ScorerOptions``.
    """

    kind: ClassVar[ScorerKind] = ScorerKind.BATCHED

    def build_request(self, ctx: ScoreContext) -> dict[str, Any] | None:
        """The Messages params (``model``, ``max_tokens``, ``messages``, ...) of the request
        about one item, or ``None`` not to ask (``score(ctx)`` then scores the item).

        Called only for an item whose candidate succeeded: when the second batch is
        built, and again at scoring time for an item without an answer. It must be
        deterministic (the response cache and ``resume`` rely on it). Raising a
        ``BatchmarkError`` (a ``ConfigError`` for a template the row cannot fill) stops
        the run with that message, as params without ``model`` and ``max_tokens``, or
        that are not JSON, do; any other exception makes the item invalid.
        """
        raise NotImplementedError

    def parse(self, ctx: ScoreContext, answer: Mapping[str, Any]) -> Score:
        """The item's score from the answer to its request.

        ``answer`` is a response record like ``ctx.response`` (``text``, ``tool_calls``,
        ``stop_reason``, ``usage``, ...) whose ``status`` is ``succeeded``. An exception,
        or a value that is not a ``Score``, makes the item invalid.
        """
        raise NotImplementedError

    def score(self, ctx: ScoreContext) -> Score:
        """An item not asked about: a failure without a candidate response, else invalid."""
        failed = no_response(ctx)
        if failed is not None:
            return failed
        return Score.of_invalid(f"{self.name} made no request about this item")

    @property
    def agreement_field(self) -> str | None:
        """The row field holding human labels to measure this scorer against (``None``:
        no agreement is measured)."""
        return None

    def agreement_pair(self, ctx: ScoreContext, score: Score) -> tuple[Any, Any] | None:
        """``(this scorer's label, the human's label)`` for one item, or ``None`` (no label,
        an invalid score). Only called when ``agreement_field`` is set."""
        return None


class CombiningScorer(ScorerOptions):
    """A scorer of other scorers' scores for the same item (of the same ``scorers:`` list).

    Subclasses implement ``depends_on`` and ``combine``, and may narrow what they depend
    on with the class variables below (checked, with every other problem, when the
    scorers are built). A combining scorer may depend on another; never on itself.
    """

    kind: ClassVar[ScorerKind] = ScorerKind.COMBINING
    depends_kinds: ClassVar[frozenset[ScorerKind]] = frozenset(ScorerKind)
    """The kinds of scorer it may depend on."""
    depends_field: ClassVar[str] = ""
    """The option naming its dependencies, for error messages (``judges`` for a panel)."""
    depends_noun: ClassVar[str] = "scorer"
    """What a dependency is called in error messages (``judge`` for a panel)."""

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The names of the scorers whose scores it combines."""
        raise NotImplementedError

    def combine(self, scores: Mapping[str, Score], ctx: ScoreContext | None = None) -> Score:
        """The item's score from its dependencies' scores for the item, keyed by name (an
        exception, or a value that is not a ``Score``, makes the item invalid)."""
        raise NotImplementedError

    def score(self, ctx: ScoreContext) -> Score:
        """Invalid: a combining scorer's score comes from ``combine``."""
        return Score.of_invalid(f"{self.name} combines other scorers' scores: call combine")


def kind_of(scorer: Scorer) -> ScorerKind:
    """How the harness runs ``scorer``: its class's ``kind``, else plain (a function, or
    any object with ``name`` and ``score``)."""
    if isinstance(scorer, ScorerOptions):
        return scorer.kind
    return ScorerKind.PLAIN
