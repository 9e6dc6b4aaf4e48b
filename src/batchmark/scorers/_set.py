"""``ScorerSet``: a config's scorers, sorted once by kind, each with its spec hash.

A ``ScorerSet`` is the sequence of scorers as written (what ``build_scorers`` returns)
plus the order they run in: every ``plain`` scorer, then every ``batched`` one (their
requests gathered into one second batch), then the ``combining`` ones, each after the
combining scorers it depends on — and otherwise in the order written. An item's scores
are computed and stored in that order.

**Spec hash** (a stored score's provenance): the first 16 hex digits of the sha256 of
the canonical JSON (orjson, keys sorted) of ``{"spec": item, "files": digests}``, where

- ``item`` is the scorer's config item, normalised: ``to_config()`` for an options model
  (``{type: {options}}``, defaults left out, aliases used, so ``- exact_match`` and
  ``- exact_match: {normalize: [strip]}`` hash alike), else the item as written
  (``{type: {options, name}}``), with ``"python": reference`` added for a ``python:``
  item;
- ``digests`` are the sha256 hex digests of the files the item names (``*_file``
  options, a ``python:`` file), in that order, ``null`` for one that cannot be read.

Keys that are not strings (YAML's ``{1: 0.5}``) are written as strings; a set (YAML's
``!!set``) as the sorted list of its members; any other value JSON has no form for as
its ``str``: the hash is the same in every process.

Editing a scorer's options or the rubric or schema file it names changes its hash;
reordering the list, renaming the config or editing another scorer does not. Code
behind a registered type or an installed package is not hashed: its version is not
config. A ``ScorerSet`` made from a list of scorers by hand has no hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import orjson
from pydantic import BaseModel

from batchmark.scorers._base import Scorer, ScorerKind, ScorerOptions
from batchmark.scorers._custom import FunctionScorer
from batchmark.scorers._kinds import BatchedScorer, CombiningScorer, kind_of

__all__ = ["DependencyCycle", "ScorerSet", "scorer_files", "scorer_spec", "spec_hash"]


class DependencyCycle(ValueError):
    """Combining scorers that depend on each other (``names``: the cycle, closed)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("a dependency cycle: " + " -> ".join(names))
        self.names = names


class ScorerSet(Sequence[Scorer]):
    """Scorers in the order written, sorted once into the order they run in.

    Indexing, iterating, ``len`` and ``==`` (with a list too) see the scorers as written;
    ``plain``, ``batched`` and ``combining`` are the three steps, and ``run_order`` all of
    them in turn. Raises ``DependencyCycle`` when combining scorers depend on each other.
    """

    __slots__ = ("_scorers", "_hashes", "plain", "batched", "combining")

    def __init__(
        self, scorers: Iterable[Scorer] = (), spec_hashes: Mapping[str, str] | None = None
    ) -> None:
        self._scorers = tuple(scorers)
        self._hashes = dict(spec_hashes or {})
        plain, batched, combining = [], [], []
        for scorer in self._scorers:
            kind = kind_of(scorer)
            if kind is ScorerKind.BATCHED:
                batched.append(scorer)
            elif kind is ScorerKind.COMBINING:
                combining.append(scorer)
            else:
                plain.append(scorer)
        self.plain: tuple[Scorer, ...] = tuple(plain)
        """Plain scorers (``score(ctx)``), in the order written."""
        self.batched: tuple[BatchedScorer, ...] = tuple(batched)
        """Batched scorers, in the order written: their requests make one second batch."""
        self.combining: tuple[CombiningScorer, ...] = tuple(_dependency_order(combining))
        """Combining scorers, each after those it depends on."""

    @classmethod
    def of(cls, scorers: Iterable[Scorer]) -> ScorerSet:
        """``scorers`` if it is a ``ScorerSet`` already, else one made of them (no hashes)."""
        return scorers if isinstance(scorers, ScorerSet) else cls(scorers)

    @property
    def run_order(self) -> tuple[Scorer, ...]:
        """Every scorer in the order they run in: plain, batched, combining."""
        return (*self.plain, *self.batched, *self.combining)

    def spec_hash(self, name: str) -> str | None:
        """The spec hash of the scorer named ``name`` (``None`` when it was not built from a
        config item)."""
        return self._hashes.get(name)

    def select(self, names: Iterable[str] | None) -> ScorerSet:
        """The named scorers and, transitively, those they depend on (``None``: all)."""
        if names is None:
            return self
        by_name = {s.name: s for s in self._scorers}
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name in wanted or name not in by_name:
                continue
            wanted.add(name)
            scorer = by_name[name]
            if isinstance(scorer, CombiningScorer):
                stack.extend(scorer.depends_on)
        return ScorerSet((s for s in self._scorers if s.name in wanted), self._hashes)

    @overload
    def __getitem__(self, index: int) -> Scorer: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Scorer, ...]: ...
    def __getitem__(self, index: int | slice) -> Scorer | tuple[Scorer, ...]:
        return self._scorers[index]

    def __len__(self) -> int:
        return len(self._scorers)

    def __iter__(self) -> Iterator[Scorer]:
        return iter(self._scorers)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScorerSet):
            return self._scorers == other._scorers
        if isinstance(other, list | tuple):
            return list(self._scorers) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ScorerSet({list(self._scorers)!r})"


def _dependency_order(combining: Sequence[CombiningScorer]) -> list[CombiningScorer]:
    """Combining scorers, each after the ones it depends on, else as given."""
    by_name = {s.name: s for s in combining}
    done: dict[str, CombiningScorer] = {}
    path: list[str] = []

    def visit(scorer: CombiningScorer) -> None:
        if scorer.name in done:
            return
        if scorer.name in path:
            raise DependencyCycle([*path[path.index(scorer.name) :], scorer.name])
        path.append(scorer.name)
        for name in scorer.depends_on:
            if name in by_name:
                visit(by_name[name])
        path.pop()
        done[scorer.name] = scorer

    for scorer in combining:
        visit(scorer)
    return list(done.values())


def scorer_spec(
    scorer: Scorer, type_name: str, options: Mapping[str, Any], reference: str | None = None
) -> dict[str, Any]:
    """A built scorer's config item, normalised (see the module docstring)."""
    if isinstance(scorer, ScorerOptions):
        item = scorer.to_config()
    else:
        item = {type_name: {**options, "name": scorer.name}}
    return {"python": reference, **item} if reference else item


def scorer_files(scorer: Scorer, reference: str | None = None) -> list[str]:
    """The files a built scorer names: its ``*_file`` options, then the ``python:`` file
    of ``reference`` (default: a function scorer's own)."""
    paths = []
    if isinstance(scorer, BaseModel):
        for name in type(scorer).model_fields:
            value = getattr(scorer, name)
            if name.endswith("_file") and isinstance(value, str):
                paths.append(value)
    if reference is None and isinstance(scorer, FunctionScorer):
        reference = scorer.reference
    module, sep, _ = (reference or "").partition(":")
    if sep and module.endswith(".py"):
        paths.append(module)
    return paths


def spec_hash(spec: Mapping[str, Any], files: Iterable[Path] = ()) -> str:
    """The spec hash of a normalised config item and the files it names."""
    digests = []
    for path in files:
        try:
            digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            digests.append(None)
    blob = orjson.dumps({"spec": spec, "files": digests}, option=_HASH_OPTIONS, default=_canonical)
    return hashlib.sha256(blob).hexdigest()[:16]


_HASH_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _canonical(value: Any) -> Any:
    """A value of an item that JSON has no form for, in a form that is the same in every
    process: a set (YAML's ``!!set``) as its members' canonical JSON, sorted (a set's own
    order follows the per-process salt of string hashes); anything else as ``str``."""
    if isinstance(value, set | frozenset):
        members = [orjson.dumps(v, option=_HASH_OPTIONS, default=_canonical) for v in value]
        return [orjson.loads(m) for m in sorted(members)]
    return str(value)
