"""``batchmark report`` and ``batchmark compare``: comparison tables in five formats."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from batchmark._terminal import SafeConsole
from batchmark.cli import cli
from batchmark.cli._common import complete_run_ref, echo, note_run, results_option, stdout_console
from batchmark.reports._compare import Comparison, compare
from batchmark.reports._html import write_html
from batchmark.reports._render import FORMATS, render, render_terminal
from batchmark.runs._run import open_run
from batchmark.runs._store import atomic_writer


def _table_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``report`` and ``compare`` share."""
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default="table",
            show_default=True,
            help="table (terminal), md (Markdown, for PR comments), csv and json (for "
            "programs), html (a self-contained report with charts and every item).",
        ),
        click.option(
            "--output",
            "-o",
            metavar="FILE",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write to FILE instead of standard output.",
        ),
        click.option(
            "--reducer",
            type=click.Choice(["mean", "pass_at_k", "pass_hat_k"]),
            default="mean",
            show_default=True,
            help="How an item's epochs become one score: the mean score, pass@k (at least "
            "one of k tries passes) or pass^k (all k tries pass).",
        ),
        click.option(
            "--k",
            "k",
            type=click.IntRange(min=1),
            default=None,
            help="k for pass_at_k / pass_hat_k.",
        ),
        click.option(
            "--cluster-field",
            metavar="FIELD",
            default=None,
            help="Dataset column grouping related items (e.g. a passage id): clustered "
            "standard errors.",
        ),
        results_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _emit(comparison: Comparison, fmt: str, output: Path | None) -> None:
    if output is None:
        if fmt == "table":
            render_terminal(comparison, stdout_console())
        elif fmt == "html":
            sys.stdout.flush()
            write_html(comparison, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            click.echo(render(comparison, fmt), nl=False)
        return
    try:  # every format appears whole or not at all (a kill midway leaves the old file)
        with atomic_writer(output) as fh:
            if fmt == "table":
                text = io.TextIOWrapper(fh, encoding="utf-8", write_through=True)
                render_terminal(comparison, SafeConsole(file=text, width=160, color_system=None))
                text.flush()
                text.detach()
            elif fmt == "html":  # streamed: every request's prompt and response, never all held
                write_html(comparison, fh)
            else:
                fh.write(render(comparison, fmt).encode())
    except OSError as err:
        raise click.UsageError(f"cannot write {output}: {err.strerror or err}") from None
    echo(f"wrote {output}", err=True)


@cli.command("report")
@click.argument("run_ref", metavar="RUN", shell_complete=complete_run_ref)
@click.option(
    "--baseline",
    metavar="VARIANT|MODEL",
    default=None,
    help="Variant or model to compare the others with (default: the first variant, else "
    "the first model).",
)
@_table_options
def report_command(
    run_ref: str,
    baseline: str | None,
    fmt: str,
    output: Path | None,
    reducer: str,
    k: int | None,
    cluster_field: str | None,
    results: Path,
) -> None:
    """Scores with 95% CIs, differences against a baseline, and cost for one RUN."""
    comparison = compare(
        [note_run(open_run(run_ref, results), again=None)],
        baseline=baseline,
        reducer=reducer,
        k=k,
        cluster_field=cluster_field,
    )
    _emit(comparison, fmt, output)


@cli.command("compare")
@click.argument(
    "run_refs", metavar="RUN [RUN ...]", nargs=-1, required=True, shell_complete=complete_run_ref
)
@click.option(
    "--baseline",
    metavar="RUN|VARIANT|MODEL",
    default=None,
    help="A run id, variant or model to compare the others with (default: the first RUN).",
)
@_table_options
def compare_command(
    run_refs: tuple[str, ...],
    baseline: str | None,
    fmt: str,
    output: Path | None,
    reducer: str,
    k: int | None,
    cluster_field: str | None,
    results: Path,
) -> None:
    """Compare RUNs cell by cell, paired on the items they share."""
    runs = [note_run(open_run(ref, results), again=None) for ref in run_refs]
    baseline_id = baseline
    if baseline is not None and baseline not in {r.id for r in runs}:
        # A run given by its folder path names the baseline by that path too.
        by_ref = dict(zip(run_refs, runs, strict=True))
        baseline_id = by_ref[baseline].id if baseline in by_ref else baseline
    comparison = compare(
        runs, baseline=baseline_id, reducer=reducer, k=k, cluster_field=cluster_field
    )
    _emit(comparison, fmt, output)
