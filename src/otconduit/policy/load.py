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

import yaml
from pydantic import ValidationError

from otconduit.policy.model import Policy, PolicyError
from otconduit.yamlconf import UniqueKeyLoader as _UniqueKeyLoader
from otconduit.yamlconf import first_error as _first_error
from otconduit.yamlconf import line_of as _line_of
from otconduit.yamlconf import loc_path as _path


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
