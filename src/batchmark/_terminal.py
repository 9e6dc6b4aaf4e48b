"""Text for the terminal: data and config values print as themselves, never as markup.

Row ids, variant names, model keys, scorer names and paths come from users' files. rich
reads ``[bold]``, ``[/]`` and ``[link=...]`` in a plain string as markup (a crash, the
wrong text, or a hyperlink), and passes control characters through: an ``ESC`` sequence
in a row id could clear the screen or open a hyperlink. So every such value reaches rich
as a :class:`~rich.text.Text` (:func:`literal`), and control characters are shown as
escapes (:func:`visible`: ``ESC`` prints as ``\\x1b``). :class:`SafeConsole` applies the
same to any plain string printed through it.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Text

__all__ = ["SafeConsole", "literal", "visible"]

# C0 controls but tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with each control character written as an escape (``\\x1b``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def literal(value: Any, style: str | Style = "") -> Text:
    """``value`` as text shown exactly as written (no markup, control characters visible)."""
    return Text(visible("" if value is None else str(value)), style=style)


class SafeConsole(Console):
    """A console on which a plain string is literal text: no markup, no emoji codes,
    control characters visible.

    Styled output is built as :class:`~rich.text.Text` (``literal(value, "bold red")``).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)  # ``:smile:`` in a row id stays as written
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        kwargs["markup"] = kwargs["emoji"] = False
        return super().render_str(visible(text), **kwargs)
