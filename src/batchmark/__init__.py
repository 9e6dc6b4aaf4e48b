"""batchmark: LLM evaluations on Anthropic's Message Batches API.

Example::

    import batchmark

    spec = batchmark.load_config("configs/quickstart.yaml")
    run = batchmark.run(spec, emulate=True)
    run.responses_df()
"""

import typing

from batchmark._facade import lazy_exports as _lazy_exports

# The public names are resolved on first use (PEP 562): the ``batchmark`` command
# imports this package before it can install its signal handlers (``batchmark._entry``),
# so importing it must not import anthropic, pandas and the rest.
_ORIGIN = {
    "batchmark.ci._ci": (
        "BaselineError",
        "CiResult",
        "load_baseline",
        "resume_ci",
        "run_ci",
        "save_baseline",
    ),
    "batchmark.reports._compare": ("Comparison", "compare", "report"),
    "batchmark.config._schema": ("EvalSpec", "config_json_schema", "load_config"),
    "batchmark.runs._driver": ("cancel", "resume", "run", "score"),
    "batchmark._errors": (
        "BatchmarkError",
        "BudgetExceeded",
        "ConfigError",
        "CredentialsError",
        "DatasetError",
        "RenderError",
        "RequestsLost",
        "RunIncomplete",
        "RunNotFound",
        "UnsafeConfig",
    ),
    "batchmark.runs._estimate": ("Estimate", "check_budget", "estimate"),
    "batchmark.runs._grid": (
        "Request",
        "ValidationReport",
        "expand",
        "make_custom_id",
        "validate_spec",
    ),
    "batchmark.runs._run": ("Run", "RunStatus", "open_run"),
}

if typing.TYPE_CHECKING:
    from batchmark._errors import (
        BatchmarkError,
        BudgetExceeded,
        ConfigError,
        CredentialsError,
        DatasetError,
        RenderError,
        RequestsLost,
        RunIncomplete,
        RunNotFound,
        UnsafeConfig,
    )
    from batchmark.ci._ci import (
        BaselineError,
        CiResult,
        load_baseline,
        resume_ci,
        run_ci,
        save_baseline,
    )
    from batchmark.config._schema import EvalSpec, config_json_schema, load_config
    from batchmark.reports._compare import Comparison, compare, report
    from batchmark.runs._driver import cancel, resume, run, score
    from batchmark.runs._estimate import Estimate, check_budget, estimate
    from batchmark.runs._grid import (
        Request,
        ValidationReport,
        expand,
        make_custom_id,
        validate_spec,
    )
    from batchmark.runs._run import Run, RunStatus, open_run

__all__ = [
    "BaselineError",
    "BatchmarkError",
    "BudgetExceeded",
    "cancel",
    "check_budget",
    "CiResult",
    "compare",
    "Comparison",
    "config_json_schema",
    "ConfigError",
    "CredentialsError",
    "DatasetError",
    "Estimate",
    "estimate",
    "EvalSpec",
    "expand",
    "load_baseline",
    "load_config",
    "make_custom_id",
    "open_run",
    "RenderError",
    "report",
    "Request",
    "RequestsLost",
    "resume",
    "resume_ci",
    "Run",
    "run",
    "run_ci",
    "RunIncomplete",
    "RunNotFound",
    "RunStatus",
    "save_baseline",
    "score",
    "UnsafeConfig",
    "validate_spec",
    "ValidationReport",
]

__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
