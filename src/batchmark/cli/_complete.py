"""Shell completion: run ids for every RUN argument, and bash's ``:`` word breaks.

Imported by ``batchmark.cli`` itself, before any command module: completion runs before
a command is chosen, and ``--help`` must stay light (click only).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class

__all__ = ["complete_run_ref"]


def complete_run_ref(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a RUN: the run ids under ``--results`` (as typed so far, a
    ``~`` the shell has not expanded yet included; else ``results/``), newest first, and
    ``latest`` / ``latest:EVAL``. Never fails: a root that cannot be read completes
    nothing."""
    from batchmark.runs._store import LATEST, iter_run_folders

    root = ctx.params.get("results") or Path("results")
    try:
        folders = list(iter_run_folders(Path(root).expanduser()))  # `~` as typed
    except OSError:
        return []
    evals = sorted({f.eval_name for f in folders})
    refs = [(LATEST, "the newest run")]
    refs += [(f"{LATEST}:{name}", f"the newest run of {name}") for name in evals]
    refs += [(f.id, f.eval_name) for f in reversed(folders)]
    return [CompletionItem(ref, help=why) for ref, why in refs if ref.startswith(incomplete)]


class _BashComplete(BashComplete):
    """bash splits the word being completed at ``:`` (``COMP_WORDBREAKS``), so
    ``latest:EV`` arrives as ``latest``, ``:``, ``EV`` and bash replaces only ``EV``:
    the words are joined back before completing, and each completion is offered without
    the part up to the last ``:`` that bash keeps (bash-completion's
    ``__ltrim_colon_completions``). A shell without ``:`` among its word breaks sends
    ``latest:EV`` whole, and gets whole completions back."""

    _kept = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        words: list[str] = []
        after_colon = glued = False  # glued: the last word was joined from bash's pieces
        for word in [*args, incomplete]:
            colon = bool(word) and set(word) == {":"}
            if words and (colon or (after_colon and word)):
                words[-1] += word
                glued = True
            else:
                words.append(word)
                glued = False
            after_colon = colon
        incomplete = words.pop()
        self._kept = incomplete[: incomplete.rindex(":") + 1] if glued else ""
        return words, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        if self._kept and item.value.startswith(self._kept):
            item = CompletionItem(item.value[len(self._kept) :], type=item.type, help=item.help)
        return super().format_completion(item)


add_completion_class(_BashComplete, "bash")
