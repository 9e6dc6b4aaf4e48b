"""config: what an eval is.

The YAML schema (``_schema``: ``EvalSpec`` and its sections), loading with includes and
environment references (``_load``), the checks that name file, field and row
(``_checks``), the API's request limits (``_limits``), prices (``_pricing``) and the
documented token approximation (``_tokens``).

Depends on ``scorers`` (a config's scorer specs are built and checked by the scorer
registry) and the foundation modules (``batchmark._errors``, ``_hooks``, ``_templates``);
never on ``runs``, ``reports``, ``ci`` or ``cli``.
"""
