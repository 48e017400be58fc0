"""Load a policy YAML file, turning every problem into ONE line ``file:line: what to fix``.

Public API (stable):

* ``load_policy(path) -> Policy`` -- read and validate a file.
* ``parse_policy(text, source="<policy>") -> Policy`` -- the same for a string.

Both raise :class:`~otconduit.policy.model.PolicyError`. Pydantic reports *where* in the
document a value is wrong (a path such as ``conduits.3.protocols.modbus.operations.1``);
PyYAML's composed node tree keeps each node's line, so walking that path through the
nodes gives the line to print. When several things are wrong the first (by line) is
shown and the rest are counted, so fixing and re-running converges quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from otconduit.policy.model import Loc, Policy, PolicyError


class _UniqueKeyLoader(yaml.SafeLoader):
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


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
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


def _path(loc: Loc) -> str:
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


def _first_error(exc: ValidationError) -> tuple[Loc, str, int]:
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


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; errors name ``source:line``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{at}: invalid YAML: {exc.problem or exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}:1: a policy is a mapping with version, plant, zones, ...")
    try:
        return Policy.model_validate(data)
    except PolicyError as exc:
        line = _line_of(root, exc.loc)
        where = f"{source}:{line}" if line else source
        raise PolicyError(f"{where}: {exc.message}", exc.loc) from None
    except ValidationError as exc:
        loc, msg, n = _first_error(exc)
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        path = _path(loc)
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        raise PolicyError(f"{where}: {path + ': ' if path else ''}{msg}{more}", loc) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raises PolicyError (one line) on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read policy: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{p}: policy is not UTF-8 text") from None
    return parse_policy(text, str(p))
