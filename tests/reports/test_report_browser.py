"""The HTML report opened in a real headless Chromium: tables and charts render.

Skips only when Debian's ``chromium`` is not installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchmark.cli._report  # noqa: F401  (registers report and compare)
from batchmark.cli import cli

from .support import JUDGE, isolated, make_run

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


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text()
    assert "<script" not in text and "<link" not in text and " src=" not in text
    assert text.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0


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
    assert dom.count('<details class="item">') == 6
    assert "reference 12 missing" in dom  # the judge's explanation, in the item view


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
