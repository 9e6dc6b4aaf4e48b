"""Rendering a :class:`~batchmark.reports._compare.Comparison`: terminal, Markdown, CSV, JSON, HTML.

Rendering only: every number comes from the comparison's DataFrames. A difference whose
95% interval excludes zero is marked ``▲`` (candidate higher) or ``▼`` (lower) in every
human format, and ``significant`` is true in CSV and JSON. The HTML report is one file:
inline CSS and SVG, no external asset; its summary is made here, its item view (data and
a small script) streamed by ``_html``.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchmark._terminal import literal, visible
from batchmark.config._pricing import fmt_usd
from batchmark.reports._compare import CELL, CELL_COLUMNS, Comparison
from batchmark.reports._numbers import MISSING, as_number, fmt_number, is_missing, json_ready

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "render", "render_terminal", "to_csv", "to_html", "to_json", "to_markdown"]

FORMATS = ("table", "md", "csv", "json", "html")

UP, DOWN = "▲", "▼"
_MAX_IDS = 8

# --------------------------------------------------------------------------- numbers


def _ci(lo: Any, hi: Any, sign: bool = False) -> str:
    if is_missing(lo) or is_missing(hi):
        return ""
    return f"[{fmt_number(lo, sign=sign)}, {fmt_number(hi, sign=sign)}]"


def _p(x: Any) -> str:
    if is_missing(x):
        return MISSING
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _usd(x: Any) -> str:
    return fmt_usd(as_number(x))


def _int(x: Any) -> str:
    return MISSING if is_missing(x) else f"{int(x):,}"


def _mark(d: dict[str, Any]) -> str:
    if not d["significant"]:
        return ""
    return UP if d["diff"] > 0 else DOWN


def _ids(ids: list[str]) -> str:
    more = len(ids) - _MAX_IDS
    return ", ".join(ids[:_MAX_IDS]) + (f", … (+{more})" if more > 0 else "")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records")


def _multi_run(comp: Comparison) -> bool:
    return len(comp.runs) > 1


def _scorers(comp: Comparison) -> list[str]:
    return list(dict.fromkeys(comp.cells["scorer"]))


def _cell_label(comp: Comparison, d: dict[str, Any]) -> list[str]:
    head = [d["run"]] if _multi_run(comp) else []
    return [*head, d["model_key"], d["variant"]]


def _title(comp: Comparison) -> str:
    reducer = comp.reducer if comp.k is None else f"{comp.reducer} (k={comp.k})"
    parts = [f"epochs reduced by {reducer}", "95% CI"]
    if comp.cluster_field:
        parts.append(f"clustered by {comp.cluster_field}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- rows


def score_text(cell: dict[str, Any]) -> str:
    """One cell of the scores table: ``mean [low, high] n=N`` (and the invalid count)."""
    text = f"{fmt_number(cell['mean'])} {_ci(cell['ci_low'], cell['ci_high'])} n={cell['n']}"
    text = text.replace("  ", " ")
    if cell["n_missing"]:
        text += f" ({cell['n_missing']} invalid)"
    return text


def _score_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the scores table: one row per cell, one column per scorer."""
    scorers = _scorers(comp)
    header = [*(["run"] if _multi_run(comp) else []), "model", "variant", *scorers]
    rows: dict[tuple, dict[str, str]] = {}
    for c in _records(comp.cells):
        rows.setdefault((c["run"], c["model_key"], c["variant"]), {})[c["scorer"]] = score_text(c)
    out = []
    for (run, model, variant), by_scorer in rows.items():
        head = [run] if _multi_run(comp) else []
        out.append([*head, model, variant, *(by_scorer.get(s, "") for s in scorers)])
    return header, out


_DIFF_HEADER = ["scorer", "Δ vs baseline [95% CI]", "sig", "corr", "n", "MDE", "+/-", "McNemar p"]


def _diff_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    head = [*(["run"] if _multi_run(comp) else []), "model", "variant"]
    rows = []
    for d in _records(comp.diffs):
        n = str(d["n"])
        if d["n_only_candidate"] or d["n_only_baseline"]:
            n += f" (+{d['n_only_candidate']}/+{d['n_only_baseline']} unpaired)"
        rows.append(
            [
                *_cell_label(comp, d),
                d["scorer"],
                f"{fmt_number(d['diff'], sign=True)} {_ci(d['ci_low'], d['ci_high'], sign=True)}",
                _mark(d),
                fmt_number(d["corr"], 2),
                n,
                fmt_number(d["mde"]),
                f"+{d['improved']}/-{d['regressed']}",
                _p(d["p_value"]),
            ]
        )
    return [*head, *_DIFF_HEADER], rows


def _item_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    head = [*(["run"] if _multi_run(comp) else []), "model", "variant", "scorer"]
    rows = []
    for cell, group in comp.items.groupby(list(CELL), sort=False):
        d = dict(zip(CELL, cell, strict=True))
        regressed = list(group.loc[group["change"] == "regressed", "row_id"])
        improved = list(group.loc[group["change"] == "improved", "row_id"])
        rows.append([*_cell_label(comp, d), d["scorer"], _ids(regressed), _ids(improved)])
    return [*head, "regressed (pass → fail)", "improved (fail → pass)"], rows


def _cost_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    head = [*(["run"] if _multi_run(comp) else []), "model", "variant"]
    cols = ["reqs", "in tok", "out tok", "cache w/r", "batch $", "std $", "saved $"]
    rows = []
    for c in _records(comp.cost):
        rows.append(
            [
                *_cell_label(comp, c),
                _int(c["requests"]),
                _int(c["input_tokens"]),
                _int(c["output_tokens"]),
                f"{_int(c['cache_write_tokens'])}/{_int(c['cache_read_tokens'])}",
                _usd(c["cost_usd"]),
                _usd(c["cost_standard_usd"]),
                _usd(c["saving_usd"]),
            ]
        )
    if len(rows) > 1:
        costs = comp.cost
        total = [
            "total",
            *([""] * (len(head) - 1)),
            _int(costs["requests"].sum()),
            _int(costs["input_tokens"].sum()),
            _int(costs["output_tokens"].sum()),
            f"{_int(costs['cache_write_tokens'].sum())}/{_int(costs['cache_read_tokens'].sum())}",
            *(_usd(_sum(costs[c])) for c in ("cost_usd", "cost_standard_usd", "saving_usd")),
        ]
        rows.append(total)
    return [*head, *cols], rows


def _sum(values: pd.Series) -> float | None:
    return None if values.isna().any() else float(values.sum())


def _baseline_line(comp: Comparison) -> str:
    if comp.cells.empty:
        if any(" is not finished (" in note for note in comp.notes):
            return "no scores yet: the run has not finished (see the note)"
        return "no scores: the runs have no scorers (add `scorers:` and `batchmark score RUN`)"
    if comp.baseline is None:
        return "no baseline: a single cell per scorer, nothing to compare"
    return (
        f"baseline {comp.baseline}; Δ = candidate − baseline on shared items; "
        f"{UP}/{DOWN}: the 95% CI excludes 0; MDE: smallest difference detectable "
        "(power 0.8, α 0.05); +/-: items improved / regressed"
    )


# --------------------------------------------------------------------------- terminal


def _rich_table(
    title: str, header: list[str], rows: Iterable[list[str | Text]], right_from: int
) -> Table:
    """A table whose every header and cell is literal text (ids and names are data)."""
    rows = list(rows)
    table = Table(title=literal(title), title_justify="left")
    for i, name in enumerate(header):
        if i >= right_from:
            table.add_column(literal(name), justify="right")
        else:  # labels keep their width; numbers wrap first
            widest = max([len(name), *(len(row[i]) for row in rows)])
            table.add_column(literal(name), min_width=min(widest, 32))
    for row in rows:
        table.add_row(*(c if isinstance(c, Text) else literal(c) for c in row))
    return table


def render_terminal(comp: Comparison, console: Console) -> None:
    """Print the scores, differences, changed items and cost tables as rich tables.

    Names and ids from the data print as written on any console (never as markup).
    """
    header, rows = _score_rows(comp)
    lead = 3 if _multi_run(comp) else 2
    if rows:
        console.print(_rich_table(f"scores ({_title(comp)})", header, rows, lead))
    console.print(literal(_baseline_line(comp)))
    for note in comp.notes:
        console.print(literal(f"note: {note}", "yellow"))
    if len(comp.diffs):
        header, rows = _diff_rows(comp)
        styled: list[list[str | Text]] = []
        for row in rows:
            cells: list[str | Text] = list(row)
            mark = row[lead + 2]
            if mark:
                style = "bold green" if mark == UP else "bold red"
                cells[lead + 1] = literal(row[lead + 1], style)
                cells[lead + 2] = literal(mark, style)
            styled.append(cells)
        console.print(_rich_table("differences vs baseline", header, styled, lead + 1))
    if len(comp.items):
        header, rows = _item_rows(comp)
        console.print(_rich_table("changed items", header, rows, len(header)))
    if len(comp.cost):
        header, rows = _cost_rows(comp)
        console.print(_rich_table("tokens and cost", header, rows, lead))


def terminal_text(comp: Comparison, width: int = 120) -> str:
    """The terminal rendering as plain text at a fixed width (no colors)."""
    buf = io.StringIO()
    render_terminal(comp, Console(file=buf, width=width, color_system=None, emoji=False))
    return buf.getvalue()


# --------------------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    """Text in Markdown as text: no table cell ends at its ``|``, no HTML of it is
    rendered (GitHub renders HTML in Markdown: ``<!--`` would hide the rest); a ``<``
    is what opens markup (``>`` alone does not), ``&`` an entity."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(comp: Comparison) -> str:
    """The tables as GitHub-flavoured Markdown (for a PR comment)."""
    parts = [f"### Scores ({_title(comp)})", _md_table(*_score_rows(comp))]
    parts.append(f"_{_md_cell(_baseline_line(comp))}_")
    parts += [f"> **note:** {_md_cell(note)}" for note in comp.notes]
    if len(comp.diffs):
        header, rows = _diff_rows(comp)
        lead = 3 if _multi_run(comp) else 2
        for row in rows:
            if row[lead + 2]:
                row[lead + 1] = f"**{row[lead + 1]}**"
        parts += ["### Differences vs baseline", _md_table(header, rows)]
    if len(comp.items):
        parts += ["### Changed items", _md_table(*_item_rows(comp))]
    if len(comp.cost):
        parts += ["### Tokens and cost", _md_table(*_cost_rows(comp))]
    return visible("\n\n".join(parts) + "\n")  # control characters in ids, as escapes


# --------------------------------------------------------------------------- CSV, JSON

CSV_DIFF_COLUMNS = {
    "baseline_run": "baseline_run",
    "baseline_model_key": "baseline_model_key",
    "baseline_variant": "baseline_variant",
    "n": "n_shared",
    "diff": "diff",
    "se": "diff_se",
    "ci_low": "diff_ci_low",
    "ci_high": "diff_ci_high",
    "corr": "corr",
    "significant": "significant",
    "mde": "mde",
    "n_clusters": "diff_n_clusters",
    "improved": "improved",
    "regressed": "regressed",
    "p_value": "p_value",
}


def csv_frame(comp: Comparison) -> pd.DataFrame:
    """One row per cell: its estimate, then its comparison with the baseline (empty if none)."""
    diffs = comp.diffs[[*CELL, *CSV_DIFF_COLUMNS]].rename(columns=CSV_DIFF_COLUMNS)
    ints = {c: "Int64" for c in ("n_shared", "improved", "regressed", "diff_n_clusters")}
    diffs = diffs.astype({**ints, "significant": "boolean"})
    frame = comp.cells[CELL_COLUMNS].astype({"n_clusters": "Int64"})
    return frame.merge(diffs, on=list(CELL), how="left")


def to_csv(comp: Comparison) -> str:
    """:func:`csv_frame` as CSV (full float precision, empty for missing)."""
    return csv_frame(comp).to_csv(index=False, lineterminator="\n")


def _json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_ready(v) for k, v in r.items()} for r in df.to_dict("records")]


def to_dict(comp: Comparison) -> dict[str, Any]:
    """Everything but the samples, as JSON-ready data (NaN is None)."""
    return {
        "runs": list(comp.runs),
        "baseline": comp.baseline,
        "reducer": comp.reducer,
        "k": comp.k,
        "cluster_field": comp.cluster_field,
        "cells": _json_records(comp.cells),
        "diffs": _json_records(comp.diffs),
        "items": _json_records(comp.items),
        "cost": _json_records(comp.cost),
        "notes": list(comp.notes),
    }


def to_json(comp: Comparison) -> str:
    """:func:`to_dict` as indented JSON."""
    return json.dumps(to_dict(comp), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- HTML

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
a.item-link,bdi,#bm-list small,#bm-list b{unicode-bidi:isolate}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0;
position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #d5d9e0}
.controls input[type=search]{width:320px}.badge{font-weight:normal;font-size:12px;margin-left:8px}
tr.hit>td:first-child{border-left:4px solid #2f5bb7}small.muted{color:#777}
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


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


def html_diff_table(comp: Comparison) -> str:
    """The differences table, a significant difference marked (class ``up``/``down``)."""
    lead = 3 if _multi_run(comp) else 2
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
    return _html_table(header, html_rows, lead + 1, raw=True)


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
        color = {"": "#2f5bb7", UP: "#137333", DOWN: "#b3261e"}[mark]
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
    """The changed items, each id a link to the item in the item view; past
    ``_MAX_LINKS`` per cell, a link to the filter that lists them all."""
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


def html_summary(comp: Comparison, title: str = "batchmark report") -> str:
    """The HTML report's start: head, tables and a chart per scorer (``_html`` then
    streams the item view and closes the page)."""
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
        body += ["<h2>Differences vs baseline</h2>", html_diff_table(comp)]
    if len(comp.items):
        body += ["<h2>Changed items</h2>", _changed_items_table(comp)]
    if len(comp.cost):
        header, rows = _cost_rows(comp)
        body += ["<h2>Tokens and cost</h2>", _html_table(header, rows, lead)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}"
    )


def to_html(comp: Comparison, title: str = "batchmark report") -> str:
    """A self-contained HTML report: tables, a chart per scorer, and the item view
    (``_html.write_html``, which writes it to a file as it is made)."""
    from batchmark.reports._html import to_html

    return to_html(comp, title)


# --------------------------------------------------------------------------- dispatch


def render(comp: Comparison, fmt: str, *, width: int = 160) -> str:
    """``comp`` in one of :data:`FORMATS` as text (``table`` at ``width`` columns)."""
    if fmt == "table":
        return terminal_text(comp, width=width)
    if fmt == "md":
        return to_markdown(comp)
    if fmt == "csv":
        return to_csv(comp)
    if fmt == "json":
        return to_json(comp)
    if fmt == "html":
        return to_html(comp)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
