"""Gates: the checks ``batchmark ci`` applies to a run's cells (``ci.gates`` in the config).

``apply_gates(ci, cells, diffs, run=..., baseline=...)`` is pure: it reads the cells and
diffs tables of a comparison (``batchmark.reports._compare``) and returns one ``GateOutcome``
per check per cell — ``min`` on the cell's mean, ``max_drop`` and ``significant_drop``
on its paired difference from the baseline, or, for a gate ``against: model:KEY``, from
model KEY's cell of the same variant in the same run. docs/ci.md describes the checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchmark.config._schema import CiConfig
from batchmark.reports._numbers import as_number, fmt_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GateOutcome", "apply_gates"]

EPS = 1e-9
"""Slack of every comparison: a mean of 0.7999999999 meets `min: 0.8`."""


@dataclass(frozen=True)
class GateOutcome:
    """One check on one cell: ``status`` is ``passed``, ``failed`` or ``skipped``.

    ``check`` is ``min``, ``max_drop``, ``significant_drop`` or, for the run as a whole
    (``scorer`` ``run``), ``max_failed_fraction``. ``value`` is what was measured (the
    mean, the drop, the CI's upper bound, the failed fraction) against ``threshold``.
    ``against`` is the model key a drop check compared with inside the run (``None``: the
    baseline, or no comparison).
    """

    scorer: str
    check: str
    model_key: str | None
    variant: str | None
    status: str
    value: float | None
    threshold: float | None
    message: str
    against: str | None = None

    @property
    def cell(self) -> str:
        if self.model_key is None:
            return "all"
        if self.against is not None:
            return f"{self.variant}: model {self.model_key} vs model {self.against}"
        return f"{self.model_key} / {self.variant}"

    @property
    def name(self) -> str:
        return f"{self.scorer} {self.check} [{self.cell}]"


def apply_gates(
    ci: CiConfig,
    cells: pd.DataFrame,
    diffs: pd.DataFrame,
    *,
    run: str,
    baseline: str | None,
    in_run: Mapping[str, pd.DataFrame | None] | None = None,
) -> list[GateOutcome]:
    """The gates of ``ci`` on run ``run``'s cells (pure: comparison tables in).

    ``cells`` and ``diffs`` are ``Comparison.cells`` and ``.diffs``; ``baseline`` names
    the baseline compared with (``None``: drop checks are skipped). ``in_run`` maps each
    model key of ``ci.against_models()`` to the run's diffs against that model (``None``
    when it has no scores in the run), for the gates ``against: model:KEY``.
    """
    out: list[GateOutcome] = []
    for scorer, gate in ci.gate_list():
        ref = gate.against_model
        mine = cells[(cells["run"] == run) & (cells["scorer"] == scorer)]
        if gate.model is not None:
            mine = mine[mine["model_key"] == gate.model]
        elif ref is not None:  # every model but the one compared with
            mine = mine[mine["model_key"] != ref]
        if gate.variant is not None:
            mine = mine[mine["variant"] == gate.variant]
        if mine.empty:
            models = gate.model or (ref and f"other than {ref}")
            where = ", ".join(
                f"{k} {v}" for k, v in (("model", models), ("variant", gate.variant)) if v
            )
            out.append(
                GateOutcome(
                    scorer,
                    "scores",
                    gate.model,
                    gate.variant,
                    "failed",
                    None,
                    None,
                    f"no {scorer} scores in this run" + (f" for {where}" if where else ""),
                )
            )
            continue
        for cell in mine.to_dict("records"):
            key = (cell["model_key"], cell["variant"])
            outcome = _recorder(out, scorer, key)
            drop_outcome = outcome if ref is None else _recorder(out, scorer, key, against=ref)
            mean = as_number(cell["mean"])
            if gate.min is not None:
                if mean is None:
                    outcome("min", "failed", None, gate.min, "no valid scores")
                else:
                    ok = mean >= gate.min - EPS
                    rel = ">=" if ok else "<"
                    outcome(
                        "min",
                        "passed" if ok else "failed",
                        mean,
                        gate.min,
                        f"mean {fmt_number(mean)} {rel} min {gate.min:g} (n={int(cell['n'])})",
                    )
            checks = [("max_drop", gate.max_drop), ("significant_drop", gate.tolerance)]
            checks = [(c, t) for c, t in checks if t is not None]
            if not checks:
                continue
            if ref is None:
                table = diffs if baseline is not None else None
                missing = "no baseline given (--baseline)"
                unpaired = f"the baseline has no {scorer} scores for {key[0]} / {key[1]} to pair"
                mine_is, theirs_is, delta = "mean", "vs baseline", "Δ"
            else:
                table = in_run.get(ref) if in_run is not None else None
                missing = unpaired = (
                    f"model {ref} has no {scorer} scores for variant {key[1]} in this run "
                    "to pair with"
                )
                mine_is, theirs_is = f"model {key[0]} mean", f"vs model {ref}"
                delta = f"model {key[0]} − model {ref}: Δ"
            diff = None if table is None else _diff_of(table, run, scorer, key)
            for check, threshold in checks:
                if table is None:
                    drop_outcome(check, "skipped", None, threshold, missing)
                elif diff is None or diff["n"] == 0:
                    drop_outcome(check, "skipped", None, threshold, unpaired)
                elif check == "max_drop":
                    drop = -float(diff["diff"])
                    ok = drop <= threshold + EPS
                    drop_outcome(
                        check,
                        "passed" if ok else "failed",
                        drop,
                        threshold,
                        f"{mine_is} {fmt_number(diff['mean'])} {theirs_is} "
                        f"{fmt_number(diff['mean_baseline'])}: "
                        f"drop {fmt_number(drop)} {'<=' if ok else '>'} max_drop {threshold:g} "
                        f"(n={int(diff['n'])})",
                    )
                else:
                    high = as_number(diff["ci_high"])
                    if high is None:
                        drop_outcome(check, "skipped", None, -threshold, "95% CI undefined (n < 2)")
                        continue
                    ok = high >= -threshold - EPS
                    low = fmt_number(diff["ci_low"], sign=True)
                    ci = f"{delta} {fmt_number(diff['diff'], sign=True)} [95% CI {low}, "
                    ci += f"{fmt_number(high, sign=True)}]"
                    verdict = "reaches" if ok else "lies entirely below"
                    drop_outcome(
                        check,
                        "passed" if ok else "failed",
                        high,
                        -threshold,
                        f"{ci} {verdict} {-threshold + 0.0:g} (n={int(diff['n'])})",
                    )
    return out


def _recorder(
    out: list[GateOutcome], scorer: str, key: tuple[str, str], *, against: str | None = None
) -> Callable[[str, str, Any, float | None, str], None]:
    """``outcome(check, status, value, threshold, message)`` appending to ``out``."""

    def outcome(check: str, status: str, value: Any, threshold: float | None, msg: str) -> None:
        value = as_number(value)
        out.append(GateOutcome(scorer, check, *key, status, value, threshold, msg, against))

    return outcome


def _diff_of(diffs: pd.DataFrame, run: str, scorer: str, key: tuple[str, str]) -> Any:
    rows = diffs[
        (diffs["run"] == run)
        & (diffs["scorer"] == scorer)
        & (diffs["model_key"] == key[0])
        & (diffs["variant"] == key[1])
    ]
    return None if rows.empty else rows.iloc[0]
