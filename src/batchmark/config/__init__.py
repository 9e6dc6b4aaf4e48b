"""config: what an eval is, and what the API accepts.

The YAML schema (``_schema``: ``EvalSpec`` and its sections), loading with includes and
environment references (``_load``), the checks that name file, field and row
(``_checks``), the API's request limits (``_limits``), the model catalog (``_models``:
``models.json``, one source of model facts, each with its source), the request rules
checked against it (``_rules``: ``check_request``), prices from it (``_pricing``) and
the documented token approximation (``_tokens``).

Depends on ``scorers`` (a config's scorer specs are built and checked by the scorer
registry) and the foundation modules (``batchmark._errors``, ``_hooks``, ``_templates``);
never on ``runs``, ``reports``, ``ci`` or ``cli``.
"""

from batchmark._facade import lazy_exports as _lazy_exports

_ORIGIN = {
    "batchmark.config._models": ("Catalog", "default_catalog", "ModelFacts"),
    "batchmark.config._rules": ("check_request", "Problem"),
    "batchmark.config._schema": (
        "EvalSpec",
        "config_json_schema",
        "load_config",
    ),
}
__all__ = [
    "Catalog",
    "check_request",
    "config_json_schema",
    "default_catalog",
    "EvalSpec",
    "load_config",
    "ModelFacts",
    "Problem",
]
__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
