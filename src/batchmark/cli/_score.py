"""``batchmark score``: score a run again, and the scores table the run commands print."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    complete_run_ref,
    format_option,
    note_run,
    progress_display,
    results_option,
    run_base_url_option,
    stdout_console,
)
from batchmark.config._schema import load_config
from batchmark.runs._driver import score
from batchmark.runs._run import Run, open_run


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_scores(handle: Run, console: Console | None = None) -> None:
    """One row per model x variant; per scorer: mean score, pass rate, n, invalid."""
    rows = handle.score_summary()
    if not rows:
        return
    console = console or stdout_console()
    scorers = list(dict.fromkeys(r["scorer"] for r in rows))
    table = Table(title="scores (mean · pass rate · n · invalid)", title_justify="left")
    table.add_column("model")
    table.add_column("variant")
    for name in scorers:
        table.add_column(name, justify="right")
    cells: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["model"], r["variant"]), {})[r["scorer"]] = r
    for (model, variant), by_scorer in cells.items():
        values: list[str | Text] = []
        for name in scorers:
            r = by_scorer.get(name)
            if r is None:
                values.append("")
                continue
            text = Text(f"{_fmt_rate(r['mean'])} · {_fmt_rate(r['pass_rate'])} · {r['n']}")
            if r["invalid"]:
                text.append(f" · {r['invalid']} invalid", style="red")
            values.append(text)
        table.add_row(model, variant, *values)
    console.print(table)
    for judge, agreement in handle.judge_agreement().items():
        kappa = agreement["kappa"]
        console.print(
            f"judge {judge} vs human labels: n={agreement['n']}, accuracy "
            f"{_fmt_rate(agreement['accuracy'])}, Cohen's kappa "
            f"{'undefined' if kappa is None else f'{kappa:.3f}'}"
        )


@cli.command("score")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Take the scorers from this config instead of the run's own snapshot.",
)
@click.option(
    "--scorer", "scorers", multiple=True, help="Score with this scorer only (repeatable)."
)
@results_option
@run_base_url_option
@format_option(["table", "json"], "Output format of the score summary.")
@allow_external_code_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def score_command(
    run_ref: str,
    config: Path | None,
    scorers: tuple[str, ...],
    results: Path,
    base_url: str | None,
    fmt: str,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Score RUN again from its stored responses, without regenerating them.

    Judges not yet asked about an item are asked now, as a batch.
    """
    handle = open_run(run_ref, results, allow_external_code=allow_external_code)
    handle = note_run(handle, again="batchmark score {run}")
    spec = None if config is None else load_config(config, allow_external_code=allow_external_code)
    with progress_display(quiet) as update:
        handle = score(
            handle,
            results=results,
            config=spec,  # a loaded spec: score() hands it to load_config, which keeps it
            scorers=scorers or None,
            base_url=base_url,
            on_progress=update,
        )
    if fmt == "json":
        click.echo(json.dumps(handle.score_summary(), indent=2))
        return
    print_scores(handle)
