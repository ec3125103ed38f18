"""YAML loading that remembers where every value came from.

The catalog's error messages name file, line and field. PyYAML's composer gives
each node a start mark; we walk the node tree once and record ``path -> line``
for every mapping value and sequence item, then construct plain Python data.

Environment references ``${NAME}`` and ``${NAME:-default}`` in string scalars are
expanded here, so secrets live in the environment and never in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Located", "LocatedYAMLError", "load_located"]

Path = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Located:
    """Parsed YAML data plus the line and column of every path in it (1-based)."""

    data: Any
    lines: Mapping[Path, tuple[int, int]]
    missing_env: tuple[tuple[Path, str], ...]

    def where(self, path: Path) -> tuple[int, int]:
        """Line and column of the longest known prefix of ``path``."""
        for cut in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:cut]))
            if found is not None:
                return found
        return (1, 1)


class LocatedYAMLError(ValueError):
    """The text is not valid YAML; carries the line and column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def load_located(text: str) -> Located:
    """Parse one YAML document, recording positions and expanding ``${ENV}``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise LocatedYAMLError(f"invalid YAML: {exc.problem}", line, col) from None
    except yaml.YAMLError as exc:
        raise LocatedYAMLError(f"invalid YAML: {exc}", 1, 1) from None
    lines: dict[Path, tuple[int, int]] = {}
    missing: list[tuple[Path, str]] = []
    if node is None:
        return Located({}, {(): (1, 1)}, ())
    data = _build(node, (), lines, missing)
    return Located(data, lines, tuple(missing))


def _build(node: yaml.Node, path: Path, lines: dict[Path, tuple[int, int]], missing: list[tuple[Path, str]]) -> Any:
    lines[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if key_node.tag != "tag:yaml.org,2002:str" else key_node.value
            out[key] = _build(value_node, (*path, str(key)), lines, missing)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, missing) for i, item in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, str) and "${" in value:
        value = _expand(value, path, missing)
    return value


_CONSTRUCTOR = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar node (int, float, bool, null, timestamp, str) as SafeLoader would.

    A value that looks like a timestamp but is not a date (``2026-13-01``) stays text, so the schema reports it with
    its line instead of the loader failing without one."""
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    except ValueError:
        return node.value


def _expand(value: str, path: Path, missing: list[tuple[Path, str]]) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        missing.append((path, name))
        return ""

    return _ENV.sub(repl, value)
