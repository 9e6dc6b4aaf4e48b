"""The HTML report: one self-contained page, streamed to a file.

The summary (scores, baseline line and notes, a chart per scorer, differences, changed
items, cost) is plain HTML with inline CSS and SVG, as every other format shows it. The
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

import html
import io
import itertools
import json
import math
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import orjson

from batchmark.reports._compare import CELL, Comparison
from batchmark.reports._numbers import fmt_number, is_missing
from batchmark.reports._render import (
    UP,
    _baseline_line,
    _cell_label,
    _ci,
    _cost_rows,
    _diff_rows,
    _mark,
    _multi_run,
    _records,
    _score_rows,
    _scorers,
    _title,
)

__all__ = ["to_html", "write_html"]

CHUNK_BYTES = 256 * 1024
"""A data block is closed once it holds about this much JSON."""

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d5d9e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#137333;font-weight:bold}.down{color:#b3261e;font-weight:bold}
.note{color:#555}.warn{color:#8a5300}.chart{margin:8px 0 16px}
pre{white-space:pre-wrap;margin:0;max-width:520px;font-size:12px}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}
.thinking summary{font-weight:normal;color:#555}.thinking pre{color:#555}
.pass{color:#137333}.fail{color:#b3261e}.invalid{color:#8a6d00}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0;
position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #d5d9e0}
.controls input[type=search]{width:320px}.badge{font-weight:normal;font-size:12px;margin-left:8px}
tr.hit>td:first-child{border-left:4px solid #2f5bb7}small.muted{color:#777}
"""

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


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


# --------------------------------------------------------------------------- summary


def _html_table(header: list[str], rows: list[list[str]], num_from: int, raw: bool = False) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="num"' if i >= num_from else ""
            out.append(f"<td{cls}>{cell if raw else _esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _svg_chart(comp: Comparison, scorer: str) -> str:
    """Mean and 95% CI of each cell for one scorer: a dot with an error bar per row."""
    cells = comp.cells[comp.cells["scorer"] == scorer]
    marks = {
        (d["run"], d["model_key"], d["variant"]): _mark(d)
        for d in _records(comp.diffs[comp.diffs["scorer"] == scorer])
    }
    lows = [v for v in cells["ci_low"].tolist() + cells["mean"].tolist() if not is_missing(v)]
    highs = [v for v in cells["ci_high"].tolist() + cells["mean"].tolist() if not is_missing(v)]
    lo = math.floor(min([0.0, *lows]) * 4) / 4  # ticks every 0.25
    hi = math.ceil(max([1.0, *highs]) * 4) / 4
    left, width, row_h, top = 260, 420, 26, 24
    height = top + row_h * len(cells) + 10

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * width

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{left + width + 60}" height="{height}" '
        f'aria-label="{_esc(scorer)}: mean and 95% CI per cell">'
    ]
    for i in range(round((hi - lo) * 4) + 1):
        v = lo + i / 4
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{top - 6}" x2="{x(v):.1f}" y2="{height - 6}" '
            f'stroke="#dde1e8"/><text x="{x(v):.1f}" y="{top - 10}" font-size="11" '
            f'text-anchor="middle" fill="#555">{v:.2f}</text>'
        )
    for j, c in enumerate(_records(cells)):
        y = top + row_h * j + row_h / 2
        label = " / ".join(_cell_label(comp, c))
        mark = marks.get((c["run"], c["model_key"], c["variant"]), "")
        color = {"": "#2f5bb7", UP: "#137333"}.get(mark, "#b3261e")
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">'
            f"{_esc(label)}{' ' + mark if mark else ''}</text>"
        )
        if not is_missing(c["ci_low"]) and not is_missing(c["ci_high"]):
            x1, x2 = x(c["ci_low"]), x(c["ci_high"])
            parts.append(
                f'<line class="errorbar" x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" '
                f'stroke="{color}" stroke-width="2"/>'
                f'<line x1="{x1:.1f}" y1="{y - 5:.1f}" x2="{x1:.1f}" y2="{y + 5:.1f}" '
                f'stroke="{color}" stroke-width="2"/>'
                f'<line x1="{x2:.1f}" y1="{y - 5:.1f}" x2="{x2:.1f}" y2="{y + 5:.1f}" '
                f'stroke="{color}" stroke-width="2"/>'
            )
        if not is_missing(c["mean"]):
            parts.append(
                f'<circle class="mean" cx="{x(c["mean"]):.1f}" cy="{y:.1f}" r="5" '
                f'fill="{color}"><title>{_esc(label)}: {fmt_number(c["mean"])} '
                f"{_ci(c['ci_low'], c['ci_high'])} n={c['n']}</title></circle>"
                f'<text x="{left + width + 8}" y="{y + 4:.1f}" font-size="11">'
                f"{fmt_number(c['mean'])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


_MAX_LINKS = 50


def _item_link(row_id: Any) -> str:
    href = "#item=" + quote(str(row_id), safe="")
    return f'<a class="item-link" href="{_esc(href)}">{_esc(row_id)}</a>'


def _changed_items_table(comp: Comparison) -> str:
    """The changed items, each id a link to the item; past ``_MAX_LINKS`` per cell, a
    link to the filter that lists them all."""
    lead = [*(["run"] if _multi_run(comp) else []), "model", "variant", "scorer"]
    rows = []
    for cell, group in comp.items.groupby(list(CELL), sort=False):
        d = dict(zip(CELL, cell, strict=True))
        out = [_esc(c) for c in _cell_label(comp, d)] + [_esc(d["scorer"])]
        for change in ("regressed", "improved"):
            ids = list(group.loc[group["change"] == change, "row_id"])
            links = ", ".join(_item_link(i) for i in ids[:_MAX_LINKS])
            if len(ids) > _MAX_LINKS:
                href = _esc(f"#change={change}&scorer={quote(str(d['scorer']), safe='')}")
                links += f', <a href="{href}">… all {len(ids):,}</a>'
            out.append(links)
        rows.append(out)
    header = [*lead, "regressed (pass → fail)", "improved (fail → pass)"]
    return _html_table(header, rows, len(header), raw=True)


def _summary(comp: Comparison, title: str) -> str:
    lead = 3 if _multi_run(comp) else 2
    body = [f"<h1>{_esc(title)}</h1>"]
    body.append(f'<p class="note">runs: {_esc(", ".join(comp.runs))} · {_esc(_title(comp))}</p>')
    header, rows = _score_rows(comp)
    body += ["<h2>Scores</h2>", _html_table(header, rows, lead)]
    body.append(f'<p class="note">{_esc(_baseline_line(comp))}</p>')
    body += [f'<p class="warn">note: {_esc(note)}</p>' for note in comp.notes]
    for scorer in _scorers(comp):
        body += [f"<h3>{_esc(scorer)}</h3>", _svg_chart(comp, scorer)]
    if len(comp.diffs):
        header, rows = _diff_rows(comp)
        html_rows = []
        for row in rows:
            row = [_esc(c) for c in row]
            mark = row[lead + 2]
            if mark:
                cls = "up" if mark == UP else "down"
                row[lead + 1] = f'<span class="{cls}">{row[lead + 1]}</span>'
                row[lead + 2] = f'<span class="{cls} significant">{mark}</span>'
            html_rows.append(row)
        body += ["<h2>Differences vs baseline</h2>"]
        body.append(_html_table(header, html_rows, lead + 1, raw=True))
    if len(comp.items):
        body += ["<h2>Changed items</h2>", _changed_items_table(comp)]
    if len(comp.cost):
        header, rows = _cost_rows(comp)
        body += ["<h2>Tokens and cost</h2>", _html_table(header, rows, lead)]
    return "".join(body)


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
    cells share are thus stored once; memory stays bounded by ``capacity``."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self.seen: OrderedDict[str, int] = OrderedDict()
        self.count = 0

    def __call__(self, text: str) -> str | int:
        if not text:
            return ""
        found = self.seen.get(text)
        if found is not None:
            self.seen.move_to_end(text)
            return found
        self.seen[text] = self.count
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
    out.write(
        (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"{_summary(comp, title)}"
        ).encode()
    )
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
