"""config: what an eval is.

The YAML schema (``_schema``: ``EvalSpec`` and its sections), loading with includes and
environment references (``_load``), the checks that name file, field and row
(``_checks``), the API's request limits (``_limits``), prices (``_pricing``) and the
documented token approximation (``_tokens``).

Depends on ``scorers`` (a config's scorer specs are built and checked by the scorer
registry) and the foundation modules (``batchmark._errors``, ``_hooks``, ``_templates``);
never on ``runs``, ``reports``, ``ci`` or ``cli``.
"""

from batchmark._facade import lazy_exports as _lazy_exports

_ORIGIN = {
    "batchmark.config._schema": (
        "EvalSpec",
        "config_json_schema",
        "load_config",
    ),
}
__all__ = [
    "config_json_schema",
    "EvalSpec",
    "load_config",
]
__getattr__, __dir__ = _lazy_exports(__name__, globals(), __all__, _ORIGIN)
