"""The HTML report: one self-contained page, streamed to a file.

The summary (scores, baseline line and notes, a chart per scorer, differences, changed
items, cost) is plain HTML with inline CSS and SVG (``_render.html_summary``). The
per-item view is data, not markup: the requests are read from the ledgers in grid order
(``Comparison.iter_samples``) and written as they come, one record per row of a run, in
``<script type="application/json" class="bm-data">`` blocks of a few hundred rows. A row's
distinct prompts are stored once and its cells refer to them. A small inline script
renders a paged list of items with a text search and filters (scorer, pass / fail /
invalid, regressed / improved); a changed item's id in the summary links to ``#item=ID``,
which shows and opens that item. Nothing is loaded from elsewhere.

Data never becomes markup: the summary escapes it as HTML, the JSON blocks escape ``<``,
``>``, ``&``, U+2028 and U+2029 (so no ``</script>`` can end a block), and the script
puts text into the page with ``textContent`` only.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from batchmark.reports._compare import Comparison
from batchmark.reports._numbers import is_missing
from batchmark.reports._render import _cell_label, _esc, _records, _scorers, html_summary

__all__ = ["to_html", "write_html"]

CHUNK_BYTES = 256 * 1024
"""A data block is closed once it holds about this much JSON."""

_SCRIPT = (Path(__file__).parent / "report.js").read_bytes()
"""The item view's script (``report.js`` beside this module, package data)."""

# --------------------------------------------------------------------------- escaping

_SCRIPT_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def script_json(value: Any) -> bytes:
    """``value`` as JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&``
    (so no ``</script>`` or ``<!--``), no U+2028/U+2029; still the same JSON."""
    try:
        data = orjson.dumps(value)
    except TypeError:  # a lone surrogate or a value orjson does not take
        data = json.dumps(value, ensure_ascii=True, default=str).encode()
    for raw, escaped in _SCRIPT_ESCAPES:
        data = data.replace(raw, escaped)
    return data


def _controls(comp: Comparison) -> str:
    scorers = "".join(f'<option value="{_esc(s)}">{_esc(s)}</option>' for s in _scorers(comp))
    change = ""
    if comp.baseline is not None:
        change = (
            '<select id="bm-change" aria-label="change vs baseline">'
            '<option value="">any change</option><option value="regressed">regressed</option>'
            '<option value="improved">improved</option>'
            '<option value="changed">regressed or improved</option></select>'
        )
    return (
        '<div class="controls">'
        '<input id="bm-q" type="search" placeholder="search ids, prompts, responses, '
        'explanations" aria-label="search items">'
        f'<select id="bm-scorer" aria-label="scorer"><option value="">any scorer</option>'
        f"{scorers}</select>"
        '<select id="bm-outcome" aria-label="outcome"><option value="">pass or fail</option>'
        '<option value="pass">pass</option><option value="fail">fail</option>'
        '<option value="invalid">invalid</option></select>'
        f'{change}<button id="bm-clear" type="button">clear</button>'
        '<button id="bm-prev" type="button">‹ prev</button>'
        '<button id="bm-next" type="button">next ›</button>'
        '<span id="bm-count"></span></div>'
    )


# --------------------------------------------------------------------------- items


class _Index:
    """Names to small integers, in order of first use (cells and scorers)."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        found = self.names.get(name)
        if found is None:
            found = self.names[name] = len(self.names)
        return found


class _Texts:
    """Texts said once: a text already written (and still among the last ``capacity``)
    is written as its number; a new one as itself, and the script numbers every text it
    reads in the same order (0, 1, ...). The empty text is always ``""``, unnumbered.
    The system prompt, few-shot turns, a question shared by variants and answers that
    cells share are thus stored once; memory stays bounded by ``capacity`` times a few
    dozen bytes: a text longer than ``SHORT`` is known by its digest, not kept."""

    SHORT = 64

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self.seen: OrderedDict[str | bytes, int] = OrderedDict()
        self.count = 0

    def __call__(self, text: str) -> str | int:
        if not text:
            return ""
        key: str | bytes = text
        if len(text) > self.SHORT:
            raw = text.encode("utf-8", "surrogatepass")
            key = hashlib.blake2b(raw, digest_size=16).digest()
        found = self.seen.get(key)
        if found is not None:
            self.seen.move_to_end(key)
            return found
        self.seen[key] = self.count
        self.count += 1
        if len(self.seen) > self.capacity:
            self.seen.popitem(last=False)
        return text


def _row_records(
    comp: Comparison, cells: _Index, scorers: _Index, texts: _Texts
) -> Iterator[list[Any]]:
    """``[row_id, prompts, cells]`` per row of each run. ``prompts``: the row's distinct
    prompts, each a list of texts (its messages, split at blank lines); a cell is
    ``[cell, custom_id, prompt index, response, scores, epoch, status, thinking]``
    without the trailing ones that are 0, ``succeeded`` and empty; a score ``[scorer,
    value, state, explanation]`` (state 1 pass, 0 fail, 2 invalid, null neither) without
    an empty explanation. Texts go through ``texts`` in the order the script reads them:
    prompts, then per cell its response, its explanations and its thinking."""
    key: tuple[Any, Any] = (None, None)  # (run, row id)
    prompts: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    for s in comp.iter_samples():
        if (s["run"], s["row_id"]) != key:
            if samples:
                yield _encode_row(key[1], prompts, samples, texts)
            key, prompts, samples = (s["run"], s["row_id"]), {}, []
        s["prompt_index"] = prompts.setdefault(s["prompt"], len(prompts))
        s["cell"] = cells(" / ".join(_cell_label(comp, s)))
        s["scores"] = [{**sc, "scorer": scorers(sc["scorer"])} for sc in s["scores"]]
        samples.append(s)
    if samples:
        yield _encode_row(key[1], prompts, samples, texts)


def _encode_row(
    row_id: Any, prompts: dict[str, int], samples: list[dict[str, Any]], texts: _Texts
) -> list[Any]:
    encoded = [[texts(part) for part in prompt.split("\n\n")] for prompt in prompts]
    out = []
    for s in samples:
        cell: list[Any] = [s["cell"], s["custom_id"], s["prompt_index"], texts(s["response"])]
        scores = []
        for sc in s["scores"]:
            state = 2 if sc["invalid"] else None if sc["passed"] is None else int(sc["passed"])
            value = None if is_missing(sc["score"]) else sc["score"]
            score = [sc["scorer"], value, state]
            if sc["explanation"]:
                score.append(texts(sc["explanation"]))
            scores.append(score)
        cell += [scores, s["epoch"], s["status"], texts(s["thinking"])]
        while len(cell) > 5 and cell[-1] in _DEFAULTS[len(cell) - 6]:
            cell.pop()
        out.append(cell)
    return [row_id, encoded, out]


_DEFAULTS = ((0,), ("succeeded",), ("",))
"""What a cell's trailing epoch, status and thinking are when left out."""


def _changes(comp: Comparison) -> list[list[Any]]:
    out = []
    for d in _records(comp.items):
        base = {
            "run": d["baseline_run"],
            "model_key": d["baseline_model_key"],
            "variant": d["baseline_variant"],
        }
        out.append(
            [
                d["row_id"],
                " / ".join(_cell_label(comp, d)),
                d["scorer"],
                d["change"],
                " / ".join(_cell_label(comp, base)),
            ]
        )
    return out


def write_html(comp: Comparison, out: IO[bytes], title: str = "batchmark report") -> None:
    """Write the report to ``out`` as it is made: memory holds one block of rows."""
    out.write(html_summary(comp, title).encode())
    cells, scorers = _Index(), _Index()
    for name in _scorers(comp):
        scorers(name)
    records = _row_records(comp, cells, scorers, _Texts())
    first = next(records, None)
    if first is not None:
        out.write(
            (
                '<h2 id="bm-items">Items</h2><noscript><p class="warn">the item view needs '
                "JavaScript</p></noscript>"
                f'{_controls(comp)}<div id="bm-list"></div>'
            ).encode()
        )
        block: list[bytes] = []
        size = 0
        for rec in itertools.chain([first], records):
            data = script_json(rec)
            block.append(data)
            size += len(data)
            if size >= CHUNK_BYTES:
                _write_block(out, block)
                block, size = [], 0
        if block:
            _write_block(out, block)
        meta = {"cells": list(cells.names), "scorers": list(scorers.names)}
        meta["changes"] = _changes(comp)
        out.write(b'<script type="application/json" id="bm-meta">')
        out.write(script_json(meta))
        out.write(b"</script><script>" + _SCRIPT + b"</script>")
    out.write(b"</body></html>\n")


def _write_block(out: IO[bytes], rows: list[bytes]) -> None:
    out.write(b'<script type="application/json" class="bm-data">[')
    out.write(b",".join(rows))
    out.write(b"]</script>\n")


def to_html(comp: Comparison, title: str = "batchmark report") -> str:
    """:func:`write_html` as a string (for small reports and tests)."""
    buf = io.BytesIO()
    write_html(comp, buf, title)
    return buf.getvalue().decode()
