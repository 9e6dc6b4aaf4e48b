"""Make this eval's PDF (and the same text as a plain-text file) with the standard library.

    python evals/docqa/make_pdf.py

The handbook of a made-up company, two pages of short facts, written as a minimal PDF
(Helvetica text, one object per page, a correct cross-reference table). The files are
this script's output and, like it, dedicated to the public domain (CC0 1.0).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

PAGES = [
    [
        "Northwind Lighthouse Company - Staff Handbook",
        "Founded in 1987 in the harbour town of Kelby.",
        "The company keeps 14 lighthouses along the northern coast.",
        "Its head keeper is Ada Morrow.",
    ],
    [
        "Working hours and leave",
        "Keepers work shifts of 12 hours.",
        "Every keeper has 30 days of paid leave a year.",
        "The supply boat calls every Tuesday.",
    ],
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(pages: list[list[str]]) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def main() -> None:
    (HERE / "handbook.pdf").write_bytes(pdf(PAGES))
    text = "\n\n".join("\n".join(lines) for lines in PAGES) + "\n"
    (HERE / "handbook.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
