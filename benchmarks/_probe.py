"""The probes of ``end_to_end_floor.py``, each run as its own process; standard library only,
so that they import nothing a plain ``batchmark run`` would not.

- ``python _probe.py run MODULES_JSON ARGS...``: ``batchmark ARGS...``; as it exits, the
  names of the modules it imported go to ``MODULES_JSON`` (in import order).
- ``python _probe.py imports MODULES_JSON``: import those modules in that order, then
  print ``{"cpu": seconds, "failed": [...]}``: the start-up a run pays before any work.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SKIP_MODULES = ("__main__", "__mp_main__")


def probe_run(modules_out: str, argv: list[str]) -> None:
    """``batchmark`` with ``argv``; at exit the imported modules go to ``modules_out``."""
    import atexit

    def record() -> None:
        names = [m for m in sys.modules if m not in SKIP_MODULES]
        Path(modules_out).write_text(json.dumps(names))

    atexit.register(record)
    from batchmark._entry import main

    sys.argv = ["batchmark", *argv]
    main()


def probe_imports(modules_file: str) -> None:
    """Import the modules a run imported, in its order; print what that cost."""
    import importlib

    failed = []
    for name in json.loads(Path(modules_file).read_text()):
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (a module only its package may load; counted)
            failed.append(name)
    times = os.times()
    print(json.dumps({"cpu": times.user + times.system, "failed": failed}))


if __name__ == "__main__":
    if sys.argv[1] == "run":
        probe_run(sys.argv[2], sys.argv[3:])
    else:
        probe_imports(sys.argv[2])
