"""``batchmark ci`` and ``batchmark baseline``: parse, call ``batchmark.ci._ci``, format.

Exit codes of ``ci``: 0 every gate passed; 1 a gate failed; 2 a config or usage error
(unknown baseline included); 3 the run is incomplete — still in flight after
``--wait-timeout`` (its id is printed on stdout; ``ci --resume RUN`` continues it) or
more failed requests than ``ci.max_failed_fraction``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from batchmark.ci._ci import (
    CiResult,
    markdown_summary,
    model_pairs,
    resume_ci,
    run_ci,
    write_junit,
)
from batchmark.cli import cli
from batchmark.cli._common import (
    allow_external_code_option,
    complete_run_ref,
    echo,
    max_cost_option,
    note_run,
    poll_option,
    progress_display,
    results_option,
    stdout_console,
)
from batchmark.config._schema import load_config
from batchmark.runs._run import Run, open_run

_STYLE = {"passed": "green", "failed": "bold red", "skipped": "dim", "incomplete": "yellow"}


@cli.command("ci")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--resume",
    "resume_ref",
    metavar="RUN",
    shell_complete=complete_run_ref,
    default=None,
    help="Continue the run of an earlier `ci` that exited 3, instead of starting one.",
)
@click.option(
    "--baseline",
    default=None,
    metavar="NAME",
    help="Baseline to compare with: RESULTS/baselines/NAME.json, or a .json path "
    "(with --resume: default, the one the run started with).",
)
@results_option
@click.option("--emulate", is_flag=True, help="Run offline against the bundled emulator.")
@click.option(
    "--base-url",
    default=None,
    help="API endpoint of a new run (default: ANTHROPIC_BASE_URL, else the real API). With "
    "--resume: default, the one the run was made against (as recorded in its run.json, "
    "whatever ANTHROPIC_BASE_URL now says).",
)
@click.option(
    "--wait-timeout",
    type=float,
    default=None,
    metavar="S",
    help="Wait at most S seconds for the batches; then exit 3 with the run id on stdout.",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML here (one test case per gate and cell).",
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the Markdown summary here (it is also appended to $GITHUB_STEP_SUMMARY).",
)
@max_cost_option
@poll_option
@allow_external_code_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def ci_command(
    ctx: click.Context,
    config: Path | None,
    resume_ref: str | None,
    baseline: str | None,
    results: Path,
    emulate: bool,
    base_url: str | None,
    wait_timeout: float | None,
    junit: Path | None,
    summary: Path | None,
    max_cost: float | None,
    poll_interval: float | None,
    allow_external_code: bool,
    quiet: bool,
) -> None:
    """Run CONFIG, compare it with a baseline and apply its `ci.gates`.

    Exit codes: 0 pass, 1 gate failed, 2 config or usage error, 3 run incomplete
    (still in flight after --wait-timeout, or failures above ci.max_failed_fraction).
    """
    if (config is None) == (resume_ref is None):
        raise click.UsageError("give CONFIG or --resume RUN (one of them)")
    if resume_ref is not None and (emulate or max_cost is not None):
        raise click.UsageError("--resume takes neither --emulate nor --max-cost")
    with progress_display(quiet) as update:
        if resume_ref is not None:
            handle = open_run(resume_ref, results, allow_external_code=allow_external_code)
            handle = note_run(handle, again="batchmark ci --resume {run}")
            result = resume_ci(
                handle,
                baseline=baseline,
                results=results,
                wait_timeout=wait_timeout,
                base_url=base_url,
                on_progress=update,
                poll_interval=poll_interval,
            )
        else:
            assert config is not None
            result = run_ci(
                load_config(config, allow_external_code=allow_external_code),
                baseline=baseline,
                results=results,
                emulate=emulate,
                wait_timeout=wait_timeout,
                base_url=base_url,
                on_progress=update,
                poll_interval=poll_interval,
                max_cost=max_cost,
                on_created=_announce,
            )
    _emit(result, junit=junit, summary=summary)
    ctx.exit(result.exit_code)


def _announce(handle: Run) -> None:
    note_run(handle, again="batchmark ci --resume {run}")
    echo(f"run {handle.id}: {handle.path}", err=True)


def _emit(result: CiResult, *, junit: Path | None, summary: Path | None) -> None:
    """Files for programs, the gates table for people, the run id for the next step."""
    text = markdown_summary(result)
    if junit is not None:
        write_junit(result, junit)
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(text, encoding="utf-8")
    _append_env_file("GITHUB_STEP_SUMMARY", text)
    _append_env_file("GITHUB_OUTPUT", f"run_id={result.run_id}\nexit_code={result.exit_code}\n")
    console = stdout_console()
    for note in result.notes:
        echo(f"note: {note}", err=True)
    if result.gates:
        title = " · ".join([f"gates · run {result.run_id}", *model_pairs(result)])
        table = Table(title=Text(title), title_justify="left")
        for col in ("result", "scorer", "check", "cell", "detail"):
            table.add_column(col)
        for g in result.gates:
            table.add_row(Text(g.status, _STYLE[g.status]), g.scorer, g.check, g.cell, g.message)
        console.print(table)
    for path in result.reports:
        if path.suffix == ".html":
            console.print(f"report: {path}")
    if result.state == "incomplete":
        if result.comparison is None:  # still in flight
            hint = f"`batchmark ci --resume {result.run_id}` continues it"
        else:  # failed requests are final: a new run (or a higher max_failed_fraction)
            hint = f"`batchmark status {result.run_id}` shows its batches"
        echo(f"run {result.run_id} incomplete: {result.reason}; {hint}", err=True)
        click.echo(result.run_id)  # stdout: for the step that resumes it
        return
    console.print(
        Text(result.state, _STYLE[result.state]),
        Text(f"(exit {result.exit_code}): {len(result.failures)} gate check(s) failed"),
    )


def _append_env_file(variable: str, text: str) -> None:
    """Append to the file an environment variable names (GitHub Actions' step files)."""
    target = os.environ.get(variable)
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
