"""Baselines: a finished run's summary and per-item scores, in a file meant to be committed.

``save_baseline(run, name)`` writes ``results/baselines/<name>.json`` — sorted keys,
indented, a trailing newline, no secrets and no absolute paths, so it diffs well in
review. ``load_baseline`` reads one back by name or path; ``batchmark ci`` compares a
new run with it item by item (``batchmark.ci._ci``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchmark._errors import BaselineError
from batchmark.reports._numbers import json_ready
from batchmark.runs._run import DEFAULT_RESULTS, Run
from batchmark.runs._store import write_atomic

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Baseline", "BaselineError", "list_baselines", "load_baseline", "save_baseline"]

BASELINE_FORMAT = 1
SCORE_FIELDS = (
    "custom_id",
    "variant",
    "model_key",
    "row_id",
    "epoch",
    "scorer",
    "score",
    "passed",
    "invalid",
)
"""The per-item fields a baseline keeps (no response text, no explanation)."""
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class Baseline:
    """A saved baseline: the file's data and where it was read from."""

    name: str
    path: Path
    data: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def eval(self) -> str:
        return self.data["eval"]

    @property
    def label(self) -> str:
        """The baseline's "run" in comparison tables."""
        return f"baseline:{self.name}"

    def scores_df(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame(self.data["scores"], columns=list(SCORE_FIELDS))
        df.insert(0, "run", self.label)
        return df


def _baselines_dir(results: str | os.PathLike[str]) -> Path:
    return Path(results) / "baselines"


def stable_json(data: Any) -> str:
    return json.dumps(json_ready(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def is_finished(run: Run) -> bool:
    """Every request ended and the run was finalized (judges asked, scores written)."""
    return bool(run.info.get("ended_at")) and run.status.complete


def save_baseline(
    run: Run, name: str, *, results: str | os.PathLike[str] = DEFAULT_RESULTS
) -> Path:
    """Write ``results/baselines/<name>.json`` from a finished run (replacing it).

    The file holds the run id, eval name, config hash, times, the run's summary (cost
    per cell, score summary) and every per-item score — nothing secret, no absolute path.
    """
    if not _NAME_RE.match(name) or set(name) == {"."}:
        raise BaselineError(f"baseline name {name!r}: use letters, digits, `_`, `.` and `-`")
    if not is_finished(run):
        raise BaselineError(
            f"run {run.id} is not finished; `batchmark resume {run.id}` finishes it first"
        )
    info = run.info
    status = run.status
    data = {
        "format": BASELINE_FORMAT,
        "name": name,
        "run_id": run.id,
        "eval": info["eval"],
        "config_hash": info["config_hash"],
        "run_created_at": info.get("created_at"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "emulated": bool(info.get("emulated")),
        "summary": {
            "requests": status.total,
            "failed": status.failed,
            "cost": run.summary(),
            "scores": run.score_summary(),
        },
        "scores": [{k: rec[k] for k in SCORE_FIELDS} for rec in run.scores()],
    }
    folder = _baselines_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    write_atomic(path, stable_json(data))
    return path


def list_baselines(results: str | os.PathLike[str] = DEFAULT_RESULTS) -> list[Baseline]:
    """Every readable baseline under ``results/baselines/``, by name."""
    folder = _baselines_dir(results)
    return [load_baseline(p, results) for p in sorted(folder.glob("*.json"))]


def load_baseline(
    name_or_path: str | os.PathLike[str], results: str | os.PathLike[str] = DEFAULT_RESULTS
) -> Baseline:
    """A baseline by name (``results/baselines/<name>.json``) or by file path."""
    ref = str(name_or_path)
    if ref.endswith(".json") or os.sep in ref or "/" in ref:
        path = Path(ref)
    else:
        path = _baselines_dir(results) / f"{ref}.json"
    if not path.is_file():
        folder = _baselines_dir(results)
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise BaselineError(
            f"no baseline {ref!r} (looked for {path}); "
            + (f"baselines: {', '.join(known)}" if known else f"no baselines under {folder}"),
            hint="`batchmark baseline save RUN NAME` creates one",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BaselineError(f"{path}: cannot read the baseline: {err}") from None
    missing = [
        k for k in ("run_id", "eval", "scores") if not isinstance(data, dict) or k not in data
    ]
    if missing or data.get("format") != BASELINE_FORMAT:
        raise BaselineError(
            f"{path}: not a batchmark baseline (format {BASELINE_FORMAT}); "
            "save it again with `batchmark baseline save RUN NAME`"
        )
    return Baseline(name=path.stem, path=path, data=data)
