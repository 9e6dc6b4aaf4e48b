"""Thinking in emulated answers: when a request thinks, and the block it gets.

A request thinks when its ``thinking`` is ``{type: enabled, budget_tokens}`` or
``{type: adaptive}``, or, without a ``thinking`` field, when its model thinks by default
(``thinks_by_default``). ``{type: disabled}`` never thinks; ``{type: between_tools}``
thinks only when the conversation goes on after a tool call (the last user message
carries a ``tool_result``) [unverified reading of "between tools"].

The emulator's thinking is a deterministic text about the last user message, placed
before the answer, with an opaque signature (base64 of a hash of the model and the
text): the SDK's ``ThinkingBlock``, ``{"type": "thinking", "thinking", "signature"}``.
Its tokens (``_tokens`` approximation of the text, at most ``budget_tokens``) are output
tokens: counted in ``usage.output_tokens`` and ``output_tokens_details.thinking_tokens``
(docs: thinking is billed as output; SDK ``OutputTokensDetails``: "Always <=
output_tokens"). With ``display: omitted`` the text is empty, the signature is kept and
the tokens are still counted (SDK ``ThinkingConfigAdaptiveParam.display``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from batchmark.config._models import Catalog, default_catalog
from batchmark.config._tokens import BYTES_PER_TOKEN, approx_tokens
from batchmark.emulator._responders import last_user_text

__all__ = [
    "THINKING_TYPES",
    "default_display",
    "display",
    "signature",
    "thinking_block",
    "thinking_on",
    "thinks_by_default",
]

THINKING_TYPES = ("thinking", "redacted_thinking")
_SNIPPET_CHARS = 400


# --- hooks the model catalog answers -------------------------------------------------------


def thinks_by_default(model: str, catalog: Catalog | None = None) -> bool:
    """Whether ``model`` thinks when a request has no ``thinking`` field: the model
    catalog's ``thinking.default`` is ``adaptive`` or ``always`` (Opus 5, Sonnet 5 and
    5.5, Haiku 5.5 by default; Opus 5.5, Fable and Mythos always). An unknown model, or
    one whose default is not established, does not."""
    return _model_defaults(catalog or default_catalog(), model)[0]


def default_display(model: str, catalog: Catalog | None = None) -> str:
    """How ``model`` shows its thinking when the request does not say: the catalog's
    ``thinking.display`` (``omitted`` on Opus 4.7+ and 5.x), else ``summarized``."""
    return _model_defaults(catalog or default_catalog(), model)[1]


@lru_cache(maxsize=1024)
def _model_defaults(catalog: Catalog, model: str) -> tuple[bool, str]:
    """(thinks by default, default display): looked up once per catalog and model, not
    once per answer (catalogs are immutable)."""
    facts = catalog.get(model)
    thinking = facts.thinking if facts is not None else None
    if thinking is None:
        return False, "summarized"
    return thinking.default in ("adaptive", "always"), thinking.display or "summarized"


# --- the requests -----------------------------------------------------------------------


def _config(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = params.get("thinking")
    return config if isinstance(config, Mapping) else None


def _after_tool_result(params: Mapping[str, Any]) -> bool:
    messages = params.get("messages") or []
    last = messages[-1] if messages else None
    if not isinstance(last, Mapping) or last.get("role") != "user":
        return False
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    )


def thinking_on(params: Mapping[str, Any], catalog: Catalog | None = None) -> bool:
    """Whether the request thinks before it answers."""
    config = params.get("thinking")
    if config is None or not isinstance(config, Mapping):
        return _model_defaults(catalog or default_catalog(), str(params.get("model")))[0]
    kind = config.get("type")
    if kind == "between_tools":
        return _after_tool_result(params)
    return kind in ("enabled", "adaptive")


def display(params: Mapping[str, Any], catalog: Catalog | None = None) -> str:
    """``summarized`` (the text is returned) or ``omitted`` (empty, signature kept)."""
    config = _config(params) or {}
    shown = config.get("display")
    if shown in ("summarized", "omitted"):
        return shown
    return default_display(str(params["model"]), catalog)


def signature(model: str, text: str) -> str:
    """An opaque, deterministic signature for a thinking text."""
    digest = hashlib.blake2b(f"{model}\0{text}".encode(), digest_size=64).digest()
    return base64.b64encode(digest).decode("ascii")


def thinking_block(params: Mapping[str, Any]) -> dict[str, Any]:
    """The emulator's own thinking about a request, within its ``budget_tokens``."""
    snippet = last_user_text(params)[:_SNIPPET_CHARS]
    text = f"The request asks: {snippet}\nWork it out step by step, then answer."
    budget = (_config(params) or {}).get("budget_tokens")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        if approx_tokens(text) > budget:
            text = text.encode()[: budget * BYTES_PER_TOKEN].decode(errors="ignore")
    model = str(params["model"])
    return {"type": "thinking", "thinking": text, "signature": signature(model, text)}
