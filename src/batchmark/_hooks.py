"""Where a config's ``python:`` hooks may load code from: its own repository.

A config names Python code in two places: ``python:`` scorers and ``python:`` emulator
responders. CI runs configs from pull requests, so a config must not be able to run
code that is not in the repository under review (``python: os:system`` is one line of
YAML). ``check_hook`` accepts a hook only when, read without importing or running
anything:

- its module is a ``.py`` file (or a package's ``__init__.py``) inside the
  repository: the git checkout holding the config (the nearest folder up with a
  ``.git``), else the config's own folder; symlinks are followed first, so a link
  pointing out of the repository is outside it;
- the name it calls is not imported into that file: ``hooks.py:subprocess.Popen``, or
  ``hooks.py:Popen`` after ``from subprocess import Popen``, would reach code from
  elsewhere through an innocent import; it must be the file's own ``def``, ``class``
  or assignment;
- no part of the attribute path is a dunder (``f.__globals__``).

``--allow-external-code`` (``allow_external_code=True``) skips the check. Scorers from
installed plugins (the ``batchmark.scorers`` entry point group) are not hooks: the user
chose to install them. See docs/security.md.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
from pathlib import Path

__all__ = ["ALLOW_HINT", "ExternalCode", "check_hook", "repository_root"]

ALLOW_HINT = (
    "`python:` scorers and responders load only from .py files inside the config's "
    "repository (the git checkout holding it, else its folder); if you trust this config "
    "and the code it names, pass --allow-external-code (in Python: "
    "load_config(..., allow_external_code=True))"
)


class ExternalCode(ValueError):
    """A hook names code from outside the config's repository; the message says why."""


def repository_root(folder: Path) -> Path:
    """The git checkout holding ``folder`` (a ``.git`` folder or file), else ``folder``."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def check_hook(module: str, attribute: str, base_dir: Path, root: Path) -> None:
    """Raise ``ExternalCode`` unless ``module:attribute`` is code of the repository ``root``.

    ``module`` is a path ending in ``.py`` (relative to ``base_dir``) or a dotted module
    name, located without importing it. What does not exist at all (a missing ``.py``
    file, a top-level module found nowhere) passes: the loader reports it as missing.
    """
    if module.endswith(".py"):
        path = (base_dir / Path(module).expanduser()).resolve()
        if not path.is_file():
            return
        if not path.is_relative_to(root):
            raise ExternalCode(f"{path} is outside the repository {root}")
    else:
        top = module.partition(".")[0]
        try:
            if importlib.util.find_spec(top) is None:  # a top-level name imports nothing
                return
        except (ImportError, ValueError):
            pass
        path = _module_file(module)
        if path is None:
            raise ExternalCode(
                f"module {module!r} is not found as a .py file inside the repository {root}"
            )
        if not path.is_relative_to(root):
            raise ExternalCode(f"module {module!r} is {path}, outside the repository {root}")
    parts = attribute.split(".")
    if any(p.startswith("__") for p in parts):
        raise ExternalCode(f"{attribute!r} reaches into Python internals")
    if _imports(path, parts[0]):
        raise ExternalCode(
            f"{path} imports {parts[0]!r} (code from elsewhere); name a def, class or "
            "assignment of the file itself"
        )


def _module_file(name: str) -> Path | None:
    """The file a dotted module name would be imported from, found without importing.

    ``None`` for a module that cannot be found, or is not a file (built-in, frozen).
    """
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name imports nothing
        for i in range(1, len(parts)):
            if spec is None or not spec.submodule_search_locations:
                return None
            locations = list(spec.submodule_search_locations)
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), locations)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.has_location or not spec.origin:
        return None
    path = Path(spec.origin).resolve()
    return path if path.suffix == ".py" and path.is_file() else None


def _imports(path: Path, name: str) -> bool:
    """Whether ``name`` in the Python file comes from an import rather than its own
    ``def``, ``class`` or assignment at the top level (also inside top-level ``if``,
    ``try``, ``with`` and loop blocks). With ``from x import *`` any name it does not
    define itself may be imported.

    A name the file does not bind at all passes (loading it reports it missing), as does
    a file that cannot be read or parsed (importing it reports the problem).
    """
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return False
    defined, imported = _bound(tree.body)
    if name in defined:
        return False
    return name in imported or "*" in imported


def _bound(body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """``(names defined, names imported)`` by the statements of one level."""
    defined: set[str] = set()
    imported: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                defined |= _targets(target)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            defined |= _targets(node.target)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                imported.add(alias.asname or alias.name.partition(".")[0])
        else:
            blocks = [getattr(node, a, None) or [] for a in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(node, "handlers", None) or []]
            for block in blocks:
                if isinstance(block, list) and all(isinstance(b, ast.stmt) for b in block):
                    more_defined, more_imported = _bound(block)
                    defined |= more_defined
                    imported |= more_imported
    return defined, imported


def _targets(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return {n for element in target.elts for n in _targets(element)}
    return set()
