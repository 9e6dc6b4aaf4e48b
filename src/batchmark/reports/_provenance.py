"""Which scorer config made the stored scores: the report's notes when it is not the run's.

Each stored score records its scorer's spec hash (see ``batchmark.scorers.ScorerSet``).
A report adds a one-line note, naming the scorer, when

- a run's stored scores of a scorer were made with another config of that scorer than
  the run's own (its ``config.yaml`` snapshot, with the files it names as they are now):
  after ``batchmark score RUN --config edited.yaml``, or after its rubric file changed;
- a run's stored scores come from a scorer its config does not have;
- the runs compared scored one scorer with different configs (other judge settings),
  so their differences mix scorer configs.

Scores stored before spec hashes were (``NULL``) are not checked; nor is a run whose
config no longer loads (``batchmark validate`` says why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from batchmark._errors import BatchmarkError

if TYPE_CHECKING:
    from batchmark.runs._run import Run

__all__ = ["EMULATED", "provenance_notes"]

EMULATED = "EMULATED"
"""The first word of the note about emulated runs (``EMULATED: ...``)."""


def provenance_notes(runs: Sequence[Run]) -> list[str]:
    """The notes about where the runs' stored scores come from (see the module docstring)."""
    stored = {run.id: run.score_specs() for run in runs}
    notes = [_emulated_note(runs)] if any(run.info.get("emulated") for run in runs) else []
    notes += [note for run in runs if (note := _unfinished_note(run))]
    notes += [note for run in runs for note in _run_notes(run, stored[run.id])]
    if len(runs) > 1:
        notes += _across_runs(stored)
    return notes


def _unfinished_note(run: Run) -> str | None:
    """A run still in flight (or canceled) is reported on its ended requests only: say so."""
    status = run.status
    ended = status.done + status.failed
    if status.state == "complete" and ended >= status.total:
        return None
    return (
        f"run {run.id} is not finished ({status.state}; {ended:,} of {status.total:,} requests "
        "ended): its scores are of the ended requests only"
    )


def _emulated_note(runs: Sequence[Run]) -> str:
    """Emulated answers look like real ones in every table: say which runs they are."""
    emulated = [run.id for run in runs if run.info.get("emulated")]
    which = "this run" if len(runs) == 1 else "run " + ", ".join(emulated)
    return (
        f"{EMULATED}: the answers of {which} came from batchmark's emulator (scripted or echoed "
        "text), not from a model; its scores say nothing about a model"
    )


def _run_notes(run: Run, stored: Mapping[str, list[str]]) -> list[str]:
    if not any(stored.values()):
        return []
    try:
        current = run.spec().build_scorers()
    except (BatchmarkError, OSError):
        return []
    names = {scorer.name for scorer in current}
    notes = []
    for scorer, hashes in stored.items():
        if not hashes:
            continue
        if scorer not in names:
            notes.append(
                f"run {run.id}: the scores of {scorer!r} come from a scorer that is not in "
                "the run's config"
            )
            continue
        wanted = current.spec_hash(scorer)
        if wanted is not None and hashes != [wanted]:
            notes.append(
                f"run {run.id}: the scores of {scorer!r} come from another config of that "
                f"scorer than the run's (spec {_short(hashes)}, the run's {wanted[:8]}); "
                f"`batchmark score {run.id}` scores them with the run's config"
            )
    return notes


def _across_runs(stored: Mapping[str, Mapping[str, list[str]]]) -> list[str]:
    notes = []
    scorers = dict.fromkeys(name for specs in stored.values() for name in specs)
    for scorer in scorers:
        by_run = {run: specs[scorer] for run, specs in stored.items() if specs.get(scorer)}
        if len(by_run) > 1 and len({h for hashes in by_run.values() for h in hashes}) > 1:
            listed = ", ".join(f"{run} {_short(hashes)}" for run, hashes in by_run.items())
            notes.append(
                f"the scores of {scorer!r} come from different configs of that scorer in "
                f"the runs compared ({listed}): their differences mix scorer configs"
            )
    return notes


def _short(hashes: list[str]) -> str:
    return "/".join(h[:8] for h in hashes)
