"""The package layout follows the flow, and packages depend downward only.

config -> grid -> ledger -> batches -> responses -> scores -> reports -> CI: each box is
one package of ``src/batchmark``. A package may import the packages below it in
``LAYERS`` and the foundation modules (``batchmark._errors``, ``_hooks``, ``_conversations``,
``_templates``, ``_terminal``), never one above it, so there is no import cycle between
packages. Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import batchmark

# Top to bottom. The facade (``batchmark/__init__``, ``_entry``, ``__main__``) sits above.
LAYERS = ["cli", "ci", "reports", "runs", "emulator", "config", "scorers", "foundation"]
FACADE = {"__init__", "__main__", "_entry"}
PACKAGE = Path(batchmark.__file__).parent


def _box(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "batchmark" or len(parts) == 1:
        return None
    return "foundation" if parts[1].startswith("_") else parts[1]


def _type_checking_only(tree: ast.Module) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                hidden.update(id(n) for n in ast.walk(inner))
    return hidden


def _imports() -> list[tuple[str, str, str]]:
    """(importing file, its box, imported module) for every runtime import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and path.stem in FACADE:
            continue
        box = "foundation" if len(rel.parts) == 1 else rel.parts[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hidden = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(rel), box, node.module))
            elif isinstance(node, ast.Import):
                found.extend((str(rel), box, alias.name) for alias in node.names)
    return found


def test_every_package_is_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS) - {"foundation"}


# The exceptions, each imported inside the one method that needs it, never at import
# time: ``Run._repr_html_`` (how a run shows in Jupyter) draws the reports' tables.
ALLOWED_UPWARD = {("runs/_run.py", "batchmark.reports._notebook")}


def test_packages_import_only_downward() -> None:
    upward = [
        f"{file} imports {module}"
        for file, box, module in _imports()
        if (target := _box(module)) is not None
        and target != box
        and LAYERS.index(target) < LAYERS.index(box)
        and (file, module) not in ALLOWED_UPWARD
    ]
    assert upward == []


def test_the_top_level_holds_only_the_facade_and_the_foundation() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    foundation = {"_conversations", "_errors", "_facade", "_hooks", "_templates", "_terminal"}
    assert modules == FACADE | foundation


def test_no_package_shadows_a_public_name() -> None:
    """``batchmark.run`` is the function: importing a package of that name would
    replace it on the facade."""
    assert not set(LAYERS) & set(batchmark.__all__)
