"""Make this eval's images and questions with the Python standard library only.

    python evals/vision/make_images.py

Each image is one solid colour, and each colour has its own size, so the emulator (which
sees an image's type and size, not its pixels) can be scripted to answer as a model that
sees the colour would (``responder.yaml``). The files are this script's output and, like
it, dedicated to the public domain (CC0 1.0).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# colour name -> (RGB, side in pixels): the sides differ so that the emulator can tell them
COLOURS = {
    "red": ((220, 20, 30), 48),
    "green": ((20, 160, 40), 56),
    "blue": ((30, 60, 210), 64),
    "yellow": ((245, 215, 20), 72),
    "black": ((0, 0, 0), 80),
    "white": ((255, 255, 255), 88),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(rgb: tuple[int, int, int], width: int, height: int) -> bytes:
    """A solid-colour 8-bit RGB PNG."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height, 9))
        + _chunk(b"IEND", b"")
    )


def main() -> None:
    images = HERE / "images"
    images.mkdir(exist_ok=True)
    rows = []
    for name, (rgb, side) in COLOURS.items():
        (images / f"{name}.png").write_bytes(png(rgb, side, side))
        rows.append({"id": name, "image": f"images/{name}.png", "answer": name})
    with open(HERE / "questions.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
