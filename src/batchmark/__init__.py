"""batchmark: LLM evaluations on Anthropic's Message Batches API.

Example::

    import batchmark

    spec = batchmark.load_config("configs/quickstart.yaml")
    run = batchmark.run(spec, emulate=True)
    run.responses_df()
"""

from batchmark._ci import BaselineError, CiResult, load_baseline, resume_ci, run_ci, save_baseline
from batchmark._compare import Comparison, compare, report
from batchmark._config import EvalSpec, config_json_schema, load_config
from batchmark._driver import cancel, resume, run, score
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
from batchmark._estimate import Estimate, check_budget, estimate
from batchmark._grid import Request, ValidationReport, expand, make_custom_id, validate_spec
from batchmark._run import Run, RunStatus, open_run

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
