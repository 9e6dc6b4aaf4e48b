"""Responders: the deterministic stand-ins for models.

A responder maps a Messages request's ``params`` to a ``Reply`` (content blocks and an
optional stop reason). The emulator then applies ``tool_choice``, ``stop_sequences`` and
``max_tokens`` and adds ids and usage, so responders stay simple.

Specs (``parse_responder``):

- ``"echo"``: the text of the last user message, verbatim; an image or document block in
  it is named on a line of its own (``[image image/png 640x480]``, ``[document
  application/pdf]``), so a test sees what was sent, and scripted rules can match it.
- ``"scripted:PATH"``: rules from a YAML list or a JSONL file; first match wins, no match
  echoes. A rule matches on ``model`` (a glob), ``system`` (a regex searched in the
  system prompt), ``user`` (in the last user message) and ``transcript`` (in the whole
  conversation, ``role: text`` per line); its ``text`` may use the groups of the match.
- ``"python:MODULE:FUNC"`` or ``"python:FILE.py:FUNC"``: a callable taking ``params``;
  it may answer thinking blocks too (see ``Reply``).
- ``"PATH.yaml"``: a mapping of model globs to specs (relative paths resolved next to it).
- a callable, or a mapping ``{model glob: spec}`` (first matching glob wins, none echoes).
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from batchmark._errors import ConfigError
from batchmark.emulator._content import describe_block

__all__ = [
    "Reply",
    "Responder",
    "ResponderError",
    "echo",
    "last_user_text",
    "parse_responder",
    "system_text",
    "to_reply",
]


@dataclass(frozen=True)
class Reply:
    """What a responder says: content blocks and a stop reason.

    Blocks: ``{"type": "text", "text"}``, ``{"type": "tool_use", "name", "input"}``,
    ``{"type": "thinking", "thinking", "signature"?}`` (a signature is made up when
    missing) and ``{"type": "redacted_thinking", "data"}``.
    """

    content: tuple[dict[str, Any], ...]
    stop_reason: str | None = None


Responder = Callable[[dict[str, Any]], Reply]
"""A function from a Messages request's params to a ``Reply``."""


class ResponderError(Exception):
    """A responder failed or answered something unusable (the request ends ``api_error``)."""


def _text_of(content: Any) -> str:
    """Text blocks' text, and a line naming each image or document block
    (``[image image/png 640x480]``, ``_content.describe_block``), joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text":
                parts.append(b.get("text", ""))
            elif (described := describe_block(b)) is not None:
                parts.append(described)
        return "\n".join(parts)
    return ""


def last_user_text(params: Mapping[str, Any]) -> str:
    """The text of the last user message (text blocks joined by newlines, image and
    document blocks named on lines of their own)."""
    for message in reversed(params.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def system_text(params: Mapping[str, Any]) -> str:
    """The system prompt as text (text blocks joined by newlines)."""
    return _text_of(params.get("system"))


def transcript_text(params: Mapping[str, Any]) -> str:
    """Every message as ``role: text`` lines, in order (text blocks only)."""
    return "\n".join(
        f"{m.get('role')}: {_text_of(m.get('content'))}"
        for m in params.get("messages") or []
        if isinstance(m, dict)
    )


def echo(params: dict[str, Any]) -> Reply:
    """The ``echo`` responder: the last user message's text, verbatim."""
    return Reply(({"type": "text", "text": last_user_text(params)},))


def to_reply(value: Any) -> Reply:
    """Normalise what a Python responder returned: a str, a list of blocks, or a dict
    with ``content`` (str or blocks) and an optional ``stop_reason``."""
    if isinstance(value, Reply):
        return value
    stop_reason = None
    if isinstance(value, Mapping):
        stop_reason = value.get("stop_reason")
        value = value.get("content")
    if isinstance(value, str):
        return Reply(({"type": "text", "text": value},), stop_reason)
    if isinstance(value, list | tuple):
        return Reply(tuple(_check_block(b) for b in value), stop_reason)
    raise ResponderError(f"a responder returned {type(value).__name__}; expected str or blocks")


def _check_block(block: Any) -> dict[str, Any]:
    if isinstance(block, Mapping):
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            return dict(block)
        if (
            block.get("type") == "tool_use"
            and isinstance(block.get("name"), str)
            and isinstance(block.get("input"), Mapping)
        ):
            return dict(block)
        if (
            block.get("type") == "thinking"
            and isinstance(block.get("thinking"), str)
            and isinstance(block.get("signature", ""), str)
        ):
            return dict(block)
        if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            return dict(block)
    raise ResponderError(f"unusable content block from a responder: {block!r}")


class CallableResponder:
    """A Python callable as a responder; its exceptions become ``ResponderError``."""

    def __init__(self, func: Callable[[dict[str, Any]], Any], name: str) -> None:
        self._func = func
        self.name = name

    def __call__(self, params: dict[str, Any]) -> Reply:
        try:
            value = self._func(params)
        except Exception as err:
            raise ResponderError(f"responder {self.name} raised {err!r}") from err
        return to_reply(value)


@dataclass(frozen=True)
class Rule:
    """One scripted rule: match fields (all optional) and what to answer."""

    model: str | None
    system: re.Pattern[str] | None
    user: re.Pattern[str] | None
    text: str | None
    tool_use: Mapping[str, Any] | None
    transcript: re.Pattern[str] | None = None
    """Searched in the whole conversation, one ``role: text`` line per message (a
    multi-turn eval's answer may depend on an earlier turn)."""

    def answer(self, params: Mapping[str, Any]) -> Reply | None:
        """The reply when this rule matches ``params``, else None."""
        if self.model is not None and not fnmatch.fnmatchcase(str(params.get("model")), self.model):
            return None
        system_match = user_match = None
        if self.system is not None:
            system_match = self.system.search(system_text(params))
            if system_match is None:
                return None
        if self.user is not None:
            user_match = self.user.search(last_user_text(params))
            if user_match is None:
                return None
        transcript_match = None
        if self.transcript is not None:
            transcript_match = self.transcript.search(transcript_text(params))
            if transcript_match is None:
                return None
        if self.tool_use is not None:
            block = {"type": "tool_use", **self.tool_use}
            return Reply((block,), "tool_use")
        match = transcript_match or user_match or system_match
        try:
            text = match.expand(self.text or "") if match else self.text or ""
        except (re.error, IndexError) as err:
            raise ResponderError(f"scripted text {self.text!r}: {err}") from err
        return Reply(({"type": "text", "text": text},))


_RULE_KEYS = {"model", "system", "user", "transcript", "text", "tool_use"}


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(None, f"{where}: a rule must be a mapping")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ConfigError(None, f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if ("text" in raw) == ("tool_use" in raw):
        raise ConfigError(None, f"{where}: give exactly one of 'text' or 'tool_use'")
    tool_use = raw.get("tool_use")
    if tool_use is not None and not (
        isinstance(tool_use, Mapping) and isinstance(tool_use.get("input", {}), Mapping)
    ):
        raise ConfigError(None, f"{where}.tool_use: expected a mapping with an 'input' mapping")
    patterns = {}
    for key in ("system", "user", "transcript"):
        try:
            patterns[key] = re.compile(str(raw[key])) if key in raw else None
        except re.error as err:
            raise ConfigError(None, f"{where}.{key}: bad regular expression: {err}") from err
    tool = {"input": {}, **tool_use} if tool_use is not None else None
    text = None if tool is not None else str(raw["text"])
    model = str(raw["model"]) if "model" in raw else None
    return Rule(model, patterns["system"], patterns["user"], text, tool, patterns["transcript"])


def load_rules(path: Path) -> list[Rule]:
    """The rules of a scripted responder file (YAML list, ``{rules: [...]}``, or JSONL)."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            raw = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        else:
            raw = yaml.safe_load(text) or []
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(str(path), f"cannot read responder rules: {err}") from err
    if isinstance(raw, Mapping) and "rules" in raw:
        raw = raw["rules"]
    if not isinstance(raw, list):
        raise ConfigError(str(path), "responder rules must be a list of rules")
    try:
        return [_rule(item, f"rules.{i}") for i, item in enumerate(raw)]
    except ConfigError as err:
        raise ConfigError(str(path), err.errors) from err


class ScriptedResponder:
    """Scripted rules: the first matching rule answers; no match echoes."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def __call__(self, params: dict[str, Any]) -> Reply:
        for rule in self.rules:
            reply = rule.answer(params)
            if reply is not None:
                return reply
        return echo(params)


class ModelRouter:
    """Routes each request to the responder of the first glob matching its model."""

    def __init__(self, routes: list[tuple[str, Responder]]) -> None:
        self.routes = routes

    def __call__(self, params: dict[str, Any]) -> Reply:
        model = str(params.get("model"))
        for glob, responder in self.routes:
            if fnmatch.fnmatchcase(model, glob):
                return responder(params)
        return echo(params)


def _load_callable(target: str, spec: str, base_dir: Path | None) -> Responder:
    module_name, sep, func_name = target.rpartition(":")
    if not sep or not module_name or not func_name:
        raise ConfigError(None, f"responder {spec!r}: expected python:MODULE:FUNC")
    try:
        if module_name.endswith(".py"):
            path = _resolve(module_name, base_dir)
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError, OSError, SyntaxError) as err:
        raise ConfigError(None, f"responder {spec!r}: cannot load {target}: {err}") from err
    if not callable(func):
        raise ConfigError(None, f"responder {spec!r}: {func_name} is not callable")
    return CallableResponder(func, spec)


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p


def _model_map(path: Path) -> Responder:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(str(path), f"cannot read responder map: {err}") from err
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(str(path), "expected a mapping of model globs to responder specs")
    try:
        return parse_responder(dict(data), base_dir=path.parent)
    except ConfigError as err:
        raise ConfigError(str(path), err.errors, err.hint) from err


def parse_responder(spec: Any = "echo", *, base_dir: Path | None = None) -> Responder:
    """A responder from a spec string, a ``{model glob: spec}`` mapping, or a callable.

    Raises ``ConfigError`` naming the spec or file when it cannot be used.
    """
    if spec is None:
        return echo
    if isinstance(spec, Mapping):
        return ModelRouter(
            [(str(g), parse_responder(s, base_dir=base_dir)) for g, s in spec.items()]
        )
    if callable(spec):
        return CallableResponder(spec, getattr(spec, "__qualname__", repr(spec)))
    if not isinstance(spec, str):
        raise ConfigError(None, f"responder {spec!r}: expected a spec string, mapping or callable")
    kind, _, target = spec.partition(":")
    if spec == "echo":
        return echo
    if kind == "scripted" and target:
        return ScriptedResponder(load_rules(_resolve(target, base_dir)))
    if kind == "python" and target:
        return _load_callable(target, spec, base_dir)
    if spec.endswith((".yaml", ".yml")) and _resolve(spec, base_dir).is_file():
        return _model_map(_resolve(spec, base_dir))
    raise ConfigError(
        None,
        f"unknown responder {spec!r}",
        hint="use echo, scripted:PATH, python:MODULE:FUNC, or a YAML file of model globs",
    )
