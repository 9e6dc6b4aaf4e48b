"""The HTML report opened in a real headless Chromium: tables and charts render, and the
item view's search, filters and changed-item links work.

A filtered view is opened as ``report.html#q=...&outcome=...``: the page sets its own
controls from the address and fires their events, as typing and choosing would, and
``--virtual-time-budget`` lets the search's debounce run before the DOM is dumped.
Skips only when Debian's ``chromium`` is not installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

import batchmark
import batchmark.cli._report  # noqa: F401  (registers report and compare)
from batchmark.cli import cli

from .support import JUDGE, RIGHT, ROWS, html_items, isolated, make_run

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
WIDTH, HEIGHT = 1200, 1600


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def dom(page: str, profile: Path) -> str:
    """The DOM of ``page`` (a file URL, with a fragment) after its script ran."""
    return chromium(profile, "--virtual-time-budget=3000", "--dump-dom", page).stdout


def shown_items(dom: str) -> list[str]:
    """The row ids of the items the item view lists, in order."""
    return re.findall(r'<details class="item" data-row="([^"]*)"', dom)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The HTML report of a judged run, haiku against sonnet (a significant difference)."""
    root = tmp_path_factory.mktemp("browser")
    with isolated(root):
        run = make_run(root, scorers=[{"includes": {"target": "{{ answer }}"}}, JUDGE])
        out = root / "report.html"
        args = ["report", run.id, "--results", str(root / "results"), "--format", "html"]
        got = CliRunner().invoke(cli, [*args, "--baseline", "claude-sonnet-4-6", "-o", str(out)])
        assert got.exit_code == 0, got.output
        yield out


ROW_ID = 'h</script><b id="x">\u202e'  # and a right-to-left override
HOSTILE = (
    'What is 1 + 1? </script><script>document.title="pwned"</script><!-- \u2028\u2029 '
    '<img src=x onerror="document.title=1"> &amp; </SCRIPT >'
)


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-item run whose row id and prompt try to end the data block and run code."""
    root = tmp_path_factory.mktemp("hostile")
    with isolated(root):
        rows = [{"id": ROW_ID, "question": HOSTILE, "answer": "2"}]
        run = make_run(root, rows=rows, models=["claude-haiku-4-5"], variants=("plain",))
        out = root / "report.html"
        args = ["report", run.id, "--results", str(root / "results"), "--format", "html"]
        got = CliRunner().invoke(cli, [*args, "-o", str(out)])
        assert got.exit_code == 0, got.output
        yield out


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text()
    assert "<link" not in text and " src=" not in text  # inline style and script only
    assert text.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    assert text.count("<script") == text.count("</script>")


def test_tables_chart_and_items_are_in_the_rendered_dom(report_html: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", report_html.as_uri()).stdout
    assert "<h2>Differences vs baseline</h2>" in dom
    assert dom.count("<table>") >= 4
    assert dom.count("<svg") == 2  # one chart per scorer
    assert dom.count('class="errorbar"') == 8  # 2 scorers x 2 models x 2 variants
    assert dom.count('class="mean"') == 8
    # haiku/plain vs sonnet/plain: -0.5 on 6 items (3 regressed): t with 5 df puts 0 in
    # the interval, as McNemar's p = 0.25 agrees; z made it "significant" (issue 17).
    # (Significance marks are rendered in tests/reports/test_render.py.)
    assert "−0.500" in dom or "-0.500" in dom
    assert 'class="down significant"' not in dom
    assert shown_items(dom) == [r["id"] for r in ROWS]
    assert "reference 12 missing" in dom  # the judge's explanation, in the item view
    assert "6 of 6 items" in dom


def test_search_lists_only_the_items_that_contain_the_text(
    report_html: Path, tmp_path: Path
) -> None:
    page = dom(report_html.as_uri() + "#q=" + quote("WHAT IS 5 + 5"), tmp_path / "p")
    assert shown_items(page) == ["q5"]
    assert "1–1 of 1 items (6 in all)" in page
    # A judge's explanation is searched too: "reference 12" is only in q6's.
    assert shown_items(dom(report_html.as_uri() + "#q=reference%2012", tmp_path / "p")) == ["q6"]


def test_pass_fail_filter_lists_the_items_with_a_failing_cell(
    report_html: Path, tmp_path: Path
) -> None:
    failing = [r["id"] for i, r in enumerate(ROWS, 1) if any(i not in s for s in RIGHT.values())]
    page = dom(report_html.as_uri() + "#scorer=includes&outcome=fail", tmp_path / "p")
    assert shown_items(page) == failing
    # Each listed item says how many of its cells failed and marks them.
    for row_id in failing:
        n = sum(int(row_id[1:]) not in s for s in RIGHT.values())
        summary = f'data-row="{row_id}"><summary><bdi>{row_id}</bdi><span class="badge">'
        assert f"{summary}{n} of 4 cells match" in page
    assert page.count('<tr class="hit">') == sum(
        int(r[1:]) not in s for r in failing for s in RIGHT.values()
    )
    every = dom(report_html.as_uri() + "#scorer=includes&outcome=pass", tmp_path / "p")
    passing = [r["id"] for i, r in enumerate(ROWS, 1) if any(i in s for s in RIGHT.values())]
    assert shown_items(every) == passing


def test_a_changed_item_links_to_that_item(report_html: Path, tmp_path: Path) -> None:
    run = batchmark.open_run(
        next((report_html.parent / "results").glob("arith/*")), report_html.parent / "results"
    )
    items = batchmark.report(run, baseline="claude-sonnet-4-6").items
    regressed = sorted(set(items.loc[items["change"] == "regressed", "row_id"]))
    assert regressed  # haiku answers fewer than sonnet
    text = report_html.read_text()
    for row_id in regressed:
        assert f'<a class="item-link" href="#item={row_id}">{row_id}</a>' in text
    page = dom(report_html.as_uri() + f"#item={regressed[0]}", tmp_path / "p")
    assert shown_items(page) == [regressed[0]]
    assert re.search(rf'<details class="item" data-row="{regressed[0]}"[^>]* open=""', page)
    label = "claude-haiku-4-5 / plain (includes, grader) vs claude-sonnet-4-6 / plain"
    assert f"regressed: {label}" in page
    # The regressed filter lists the same items.
    page = dom(report_html.as_uri() + "#change=regressed", tmp_path / "p")
    assert sorted(shown_items(page)) == regressed


def test_hostile_text_stays_text(hostile_html: Path, tmp_path: Path) -> None:
    text = hostile_html.read_text()
    for block in re.findall(r'class="bm-data">(.*?)</script>', text, re.S):
        assert not set("<>&\u2028\u2029") & set(block)  # nothing can end the block
    (item,) = html_items(text)
    assert item["row_id"] == ROW_ID and HOSTILE in item["prompts"][0]  # the data, intact
    page = dom(hostile_html.as_uri(), tmp_path / "p")
    assert "<title>batchmark report</title>" in page  # no script of the data ran
    assert "<img" not in page and '<b id="x">' not in page  # no markup of the data made
    assert "&lt;/script&gt;&lt;script&gt;document.title=" in page  # shown as text
    assert [html.unescape(i) for i in shown_items(page)] == [ROW_ID]
    # an id's right-to-left override reorders nothing after it (the badges, other ids)
    assert re.search(r'<summary><bdi>[^<]*\u202e</bdi><span class="badge">', page)
    assert "a.item-link,bdi,#bm-list small,#bm-list b{unicode-bidi:isolate}" in page
    opened = dom(hostile_html.as_uri() + "#item=" + quote(ROW_ID), tmp_path / "p")
    assert len(shown_items(opened)) == 1 and 'id="bm-open"' in opened


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and the pixels of an 8-bit RGB or RGBA PNG (a tiny decoder)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            left = cur[i - channels] if i >= channels else 0
            up, up_left = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                cur[i] = (cur[i] + left) & 0xFF
            elif kind == 2:
                cur[i] = (cur[i] + up) & 0xFF
            elif kind == 3:
                cur[i] = (cur[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                cur[i] = (cur[i] + pred) & 0xFF
        rows.append(cur)
        prev = cur
    pixels = [tuple(row[x : x + 3]) for row in rows[::4] for x in range(0, stride, channels * 4)]
    return width, height, pixels


def test_screenshot_shows_a_rendered_page(report_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        report_html.as_uri(),
    )
    width, height, pixels = _png_pixels(shot.read_bytes())  # every 4th row and column
    assert (width, height) == (WIDTH, HEIGHT)
    # A blank page is one color; text, tables and the chart add many, on a white ground.
    assert len(set(pixels)) > 20
    white = sum(1 for p in pixels if min(p) >= 250) / len(pixels)
    assert 0.3 < white < 0.995
    blue = (0x2F, 0x5B, 0xB7)  # the chart's dots and error bars
    assert sum(1 for p in pixels if p == blue) > 20
