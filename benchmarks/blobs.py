"""Big inputs without big copies: a vision grid whose images are stored once.

Run: ``python benchmarks/blobs.py [--rows 10000] [--images 1000] [--image-bytes 1000000]
[--dir TMPDIR] [--no-readme]``.

A temporary folder gets ``--images`` distinct PNG files of about ``--image-bytes`` each
(a valid 512 x 512 PNG whose bulk is an ancillary chunk of random bytes, so it neither
compresses nor dedupes), a dataset of ``--rows`` rows (row i shows image i mod images)
and a config of 2 prompt variants x 1 model: cells = rows x 2. Phases, each in a fresh
process (peak RSS is the phase's own, interpreter and imports included; ``baseline`` is
the peak just before the timed work):

- ``expand``: the grid written into a new ledger exactly as ``batchmark run`` does
  (``_insert_requests(ledger, expand(spec, blobs=ledger))``): every image read, checked
  and hashed, its base64 kept once in ``blobs``, each request's params holding a
  reference. The ledger's size (with its WAL) is compared with the distinct image bytes
  and with the bytes the requests have as sent.
- ``assemble``: every create body the runner would send, built from that ledger: pending
  requests packed by their size as sent (``BatchPacker``, 256 MB / 100,000), each chunk
  recorded as an intent and its body streamed by ``body_pieces`` from
  ``Ledger.intent_requests`` (the images spliced in), counted and checked against
  ``body_length``, then dropped. Nothing goes over the network: sending 27 GB to the
  in-process emulator would measure the emulator's JSON parser, not the harness.

Targets (issue 16): ledger under 2x the distinct image bytes; peak RSS under 400 MB.
The figures are printed, then written to the ``blobs`` block of the README's performance
section (``--no-readme`` skips that).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import tempfile
import time
import zlib
from pathlib import Path

import _report

SIDE = 512


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_IDAT = _chunk(b"IDAT", zlib.compress((b"\x00" + b"\x00" * SIDE * 3) * SIDE, 9))


def image(size: int) -> bytes:
    """A valid 512 x 512 PNG of about ``size`` bytes, its bulk random (an ancillary chunk)."""
    head = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)
    )
    pad = max(0, size - len(head) - len(_IDAT) - 12 - 12)
    return head + _chunk(b"rnDm", os.urandom(pad)) + _IDAT + _chunk(b"IEND", b"")


def write_eval(folder: Path, rows: int, images: int, image_bytes: int) -> tuple[Path, int]:
    """The images, the dataset and the config; returns the config and the image bytes."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(images):
        data = image(image_bytes)
        (folder / "images" / f"{i:05d}.png").write_bytes(data)
        total += len(data)
    with open(folder / "data.jsonl", "w", encoding="utf-8") as fh:
        for i in range(rows):
            row = {"id": f"r{i:06d}", "image": f"images/{i % images:05d}.png", "q": f"Item {i}?"}
            fh.write(json.dumps(row) + "\n")
    config = {
        "name": "blobs",
        "dataset": {"path": "data.jsonl", "id_field": "id"},
        "prompts": [
            {
                "name": "image-first",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "path": "{{ image }}"},
                            {"type": "text", "text": "{{ q }}"},
                        ],
                    }
                ],
            },
            {
                "name": "question-first",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "{{ q }}"},
                            {"type": "image", "path": "{{ image }}"},
                        ],
                    }
                ],
            },
        ],
        "models": ["claude-haiku-4-5"],
        "params": {"max_tokens": 16},
    }
    path = folder / "eval.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path, total


def _ledger_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# --- the phases (each in its own subprocess) ---------------------------------------------


def phase_expand(config: Path) -> dict:
    from batchmark.config._schema import load_config
    from batchmark.runs._driver import _insert_requests
    from batchmark.runs._grid import expand
    from batchmark.runs._ledger import Ledger

    spec = load_config(config)
    path = config.parent / "ledger.sqlite"
    ledger = Ledger(path)
    baseline = _peak_mb()
    started = time.perf_counter()
    try:
        _insert_requests(ledger, expand(spec, blobs=ledger), None, file=str(spec.path))
        seconds = time.perf_counter() - started
        cells = ledger.total_requests()
        (blobs, blob_bytes) = ledger.db.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM blobs"
        ).fetchone()
        (sent,) = ledger.db.execute(
            "SELECT sum(coalesce(sent_size, length(params))) FROM params"
        ).fetchone()
    finally:
        ledger.close()
    return {
        "cells": cells,
        "seconds": seconds,
        "baseline_mb": baseline,
        "ledger_bytes": _ledger_bytes(path),
        "blobs": blobs,
        "blob_bytes": blob_bytes,
        "sent_bytes": sent,
    }


def phase_assemble(config: Path) -> dict:
    from batchmark.config._schema import BatchConfig
    from batchmark.runs._backend import body_length, body_pieces
    from batchmark.runs._ledger import Ledger
    from batchmark.runs._packing import ENTRY_OVERHEAD, BatchPacker

    ledger = Ledger(config.parent / "ledger.sqlite")
    packer_config = BatchConfig()
    baseline = _peak_mb()
    started = time.perf_counter()
    batches = total = largest = 0
    try:
        while True:
            # the runner's packing (``BatchRunner._next_chunk``): sizes as sent
            packer = BatchPacker.for_config(packer_config, first=batches)
            chunk: list[int] = []
            rows = ledger.pending_sizes()
            for seq, custom_id, size in rows:
                opens = packer.add(ENTRY_OVERHEAD + len(custom_id) + size)
                if opens is None:
                    raise SystemExit(f"request {custom_id} fits in no batch")
                if opens and chunk:
                    break
                chunk.append(seq)
            rows.close()
            if not chunk:
                break
            intent = ledger.record_intent(chunk)
            with ledger.intent_requests(intent) as requests:
                expected = body_length(requests.sizes())
                n = sum(len(piece) for piece in body_pieces(requests))
            if n != expected or n > packer.max_bytes:
                raise SystemExit(f"batch {batches}: body {n} bytes, expected {expected}")
            ledger.abandon_intent(intent)  # keep the ledger as expanded for a rerun
            with ledger.transaction() as db:  # leave these requests out of the next chunk
                db.executemany(
                    "UPDATE requests SET state = 'submitted' WHERE seq = ?", [(s,) for s in chunk]
                )
            batches += 1
            total += n
            largest = max(largest, n)
        seconds = time.perf_counter() - started
        cells = ledger.total_requests()
    finally:
        ledger.close()
    return {
        "cells": cells,
        "seconds": seconds,
        "baseline_mb": baseline,
        "batches": batches,
        "body_bytes": total,
        "largest_body": largest,
    }


PHASES = {"expand": phase_expand, "assemble": phase_assemble}


def child(phase: str, config: Path) -> None:
    import datasets  # noqa: F401  (imported before the baseline: pyarrow alone is ~100 MB)

    result = PHASES[phase](config)
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def run_child(phase: str, config: Path) -> dict:
    return _report.run_phase(__file__, phase, config, config.parent / "hf")


# --- report ------------------------------------------------------------------------------

PACKAGES = ("batchmark", "anthropic", "orjson", "datasets")


def readme_block(args: argparse.Namespace, image_total: int, ex: dict, asm: dict) -> list[str]:
    ratio = ex["ledger_bytes"] / image_total
    rows = [
        (
            "expand into ledger",
            f"{ex['cells']:,}",
            f"{ex['seconds']:.1f}",
            f"{ex['baseline_mb']:,.0f} MB",
            f"{ex['peak_mb']:,.0f} MB",
        ),
        (
            "assemble create bodies",
            f"{asm['cells']:,}",
            f"{asm['seconds']:.1f}",
            f"{asm['baseline_mb']:,.0f} MB",
            f"{asm['peak_mb']:,.0f} MB",
        ),
    ]
    header = ("phase", "cells", "seconds", "baseline RSS", "peak RSS")
    return [
        "**Big inputs** (`benchmarks/blobs.py`): "
        f"{args.rows:,} rows x 2 variants over {args.images:,} distinct images of "
        f"{image_total / args.images / 1e6:.2f} MB; each phase in a fresh process.",
        "",
        *_report.table(header, rows),
        "",
        f"Ledger after expansion: {ex['ledger_bytes'] / 1e6:,.0f} MB = {ratio:.2f}x the "
        f"{image_total / 1e6:,.0f} MB of distinct images (target: under 2x; {ex['blobs']:,} "
        f"blobs, {ex['blob_bytes'] / 1e6:,.0f} MB of base64). The requests as sent hold "
        f"{ex['sent_bytes'] / 1e9:,.1f} GB: {asm['batches']:,} create bodies, the largest "
        f"{asm['largest_body'] / 1e6:,.0f} MB (target peak RSS: under 400 MB).",
        "",
        _report.machine_summary(PACKAGES, sqlite=True),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--image-bytes", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where the temporary folder goes")
    parser.add_argument("--child", nargs=2, metavar=("PHASE", "CONFIG"), help=argparse.SUPPRESS)
    _report.add_readme_flag(parser)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    print("batchmark benchmark: images stored once (blobs)")
    print(f"grid:     {args.rows:,} rows x 2 variants x 1 model over {args.images:,} images")
    for line in _report.machine_lines(PACKAGES, sqlite=True):
        print(line)
    print()
    with tempfile.TemporaryDirectory(prefix="batchmark-blobs-", dir=args.dir) as tmp:
        config, image_total = write_eval(Path(tmp), args.rows, args.images, args.image_bytes)
        print(f"images:   {args.images:,} files, {image_total / 1e6:,.0f} MB")
        ex = run_child("expand", config)
        print(
            f"expand:   {ex['cells']:,} cells in {ex['seconds']:.1f} s, peak RSS "
            f"{ex['peak_mb']:,.0f} MB (baseline {ex['baseline_mb']:,.0f} MB)"
        )
        print(
            f"ledger:   {ex['ledger_bytes'] / 1e6:,.0f} MB = "
            f"{ex['ledger_bytes'] / image_total:.2f}x the distinct image bytes "
            f"({ex['blobs']:,} blobs); requests as sent: {ex['sent_bytes'] / 1e9:,.2f} GB",
            flush=True,
        )
        asm = run_child("assemble", config)
        print(
            f"assemble: {asm['batches']:,} bodies, {asm['body_bytes'] / 1e9:,.2f} GB in "
            f"{asm['seconds']:.1f} s, peak RSS {asm['peak_mb']:,.0f} MB "
            f"(baseline {asm['baseline_mb']:,.0f} MB)"
        )
    if args.readme:
        _report.write_block("blobs", readme_block(args, image_total, ex, asm))
        print(f"\nwrote the blobs block of {_report.README}")


if __name__ == "__main__":
    main()
