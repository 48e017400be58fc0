"""YAML configuration files validated by pydantic, with errors that name the line.

Policy, detection rules and gateway configs all follow one pattern: PyYAML's composed
node tree keeps each node's line, pydantic says *where* in the document a value is
wrong, and walking that path through the nodes gives ``file:line: what to fix``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest node along ``loc``; unknown path parts are skipped
    (pydantic inserts union branch names such as ``str`` or ``VlanMember``)."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    # A missing/invalid scalar under a key: point at the key's line.
                    line = k.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            nxt = node.value[part]
        if nxt is None:
            continue
        node = nxt
        line = node.start_mark.line + 1
    return line


def loc_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part[:1].isupper() or part in ("str", "int", "float", "list", "dict"):
            continue  # union branch / type tags say nothing to a policy author
        elif "[" in part or "function-" in part:
            continue
        else:
            out += ("." if out else "") + part
    return out


def first_error(exc: ValidationError) -> tuple[Loc, str, int]:
    errors = exc.errors(include_url=False)
    # For unions pydantic reports one error per branch: keep the most informative one.
    best = errors[0]
    for e in errors:
        if e["type"] in ("value_error", "assertion_error"):
            best = e
            break
    msg = str(best["msg"]).removeprefix("Value error, ")
    if best["type"] == "missing":
        msg = f"missing required field '{best['loc'][-1]}'"
    elif best["type"] == "extra_forbidden":
        msg = f"unknown field '{best['loc'][-1]}' (check the spelling against the schema)"
    elif best["type"] == "literal_error":
        msg = f"{msg}, got {best.get('input')!r}"
    return tuple(best["loc"]), msg, len(errors)


class ConfigError(Exception):
    """A configuration file is invalid; ``str()`` is one line ``file:line: what to fix``."""


def parse_model(text: str, source: str, model: type[M], what: str = "configuration") -> M:
    """Validate YAML text against ``model``; raises :class:`ConfigError` naming the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{at}: invalid YAML: {exc.problem or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: a {what} file is a YAML mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc, msg, n = first_error(exc)
        line = line_of(root, loc)
        where = f"{source}:{line}" if line else source
        path = loc_path(loc)
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        raise ConfigError(f"{where}: {path + ': ' if path else ''}{msg}{more}") from None


def load_model(path: str | Path, model: type[M], what: str = "configuration") -> M:
    """Read and validate a YAML file; raises :class:`ConfigError` (one line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: {what} is not UTF-8 text") from None
    return parse_model(text, str(p), model, what)
