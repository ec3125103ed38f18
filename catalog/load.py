"""Load and validate a catalog file; every problem is reported with file, line and field.

Validation is complete here: the schema (:mod:`catalog.model`), the references between KPIs, the alert rules,
routes and channels (:mod:`catalog.alerts`, :mod:`catalog.channels`) and the detector kinds and parameters
(:mod:`catalog.detectors`). Nothing registers extra checks, so what :func:`parse_catalog` accepts does not depend
on what else the process imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from catalog.alerts import parse_routes, parse_rules
from catalog.channels import parse_channels
from catalog.detectors import detector_problems
from catalog.model import Catalog, KpiSpec
from catalog.yamlmap import Located, LocatedYAMLError, load_located

__all__ = ["CatalogError", "CatalogIssue", "load_catalog", "parse_catalog"]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class CatalogIssue:
    """One problem: where (file, line, column, field path) and what."""

    file: str
    line: int
    column: int
    path: Path
    message: str

    def __str__(self) -> str:
        field = _dotted(self.path)
        return f"{self.file}:{self.line}:{self.column}: {field + ': ' if field else ''}{self.message}"


class CatalogError(ValueError):
    """The catalog is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[CatalogIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def load_catalog(path: str | FsPath, *, channels: bool = True) -> Catalog:
    """Read, parse and validate the catalog at ``path``; raise :class:`CatalogError`. ``channels=False``: for a
    command that sends no alert (simulate, backtest, dashboards…), the alert channels' environment variables
    (endpoints, secrets) need not be set and the channels are not checked; everything else is."""
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([CatalogIssue(file, 0, 0, (), f"cannot read catalog: {exc.strerror}")]) from None
    return parse_catalog(text, file, channels=channels)


def parse_catalog(text: str, file: str = "<catalog>", *, channels: bool = True) -> Catalog:
    """Parse catalog YAML ``text``; ``file`` is used in error messages (``channels``: see :func:`load_catalog`)."""
    try:
        located = load_located(text)
    except LocatedYAMLError as exc:
        raise CatalogError([CatalogIssue(file, exc.line, exc.column, (), str(exc))]) from None
    issues = [_issue(file, located, path, f"environment variable ${{{name}}} is not set")
              for path, name in located.missing_env if channels or not path or path[0] != "channels"]
    if not isinstance(located.data, dict):
        raise CatalogError([_issue(file, located, (), "the catalog must be a mapping with 'sources' and 'kpis'")])
    data: dict[str, Any] = located.data
    dropped: set[str] = set()          # names of the parts left out because their schema is wrong
    # per list section, the original index of each item still in ``data`` (paths are reported in the file's terms)
    origin = {section: list(range(len(data[section]))) for section in _PARTS if isinstance(data.get(section), list)}
    catalog = None
    for _ in range(_PRUNE_ROUNDS):
        try:
            catalog = Catalog.model_validate(data)
            break
        except ValidationError as exc:
            locs = [_loc(err["loc"]) for err in exc.errors()]
            issues += [_issue(file, located, _original(loc, origin), _msg(err))
                       for loc, err in zip(locs, exc.errors(), strict=True)]
            data = _pruned(data, locs, dropped, origin)
    if catalog is None:
        raise CatalogError(issues)
    # Every other check runs on what is well-formed, so one run reports everything; a problem that only says a
    # left-out part is missing (a ratio of a KPI whose schema is wrong) is not said twice.
    rest = [(path, msg) for check in (_semantic, _detectors, _ratio_parts, _teams) for path, msg in check(catalog)]
    rest += [(path, msg.removeprefix("Value error, ")) for path, msg in _alerting(catalog)
             if channels or not path or path[0] != "channels"]
    rest += list(catalog.calendar.problems())
    emptied = {section for section in _PARTS if isinstance(located.data.get(section), list | dict)
               and len(located.data[section]) and not len(data.get(section) or ())}
    issues += [_issue(file, located, _original(path, origin), msg) for path, msg in rest
               if not any(repr(name) in msg for name in dropped) and not (len(path) == 1 and path[0] in emptied)]
    if issues:
        raise CatalogError(issues)
    return catalog


_PRUNE_ROUNDS = 4   # schema rounds: each leaves out the parts the last one found wrong
_PARTS = ("kpis", "sources", "channels", "teams")   # sections whose items are left out one by one


def _original(path: Path, origin: dict[str, list[int]]) -> Path:
    """``path`` in the pruned catalog as a path in the file (list items left out shift the later ones)."""
    if len(path) > 1 and str(path[0]) in origin and isinstance(path[1], int) and path[1] < len(origin[str(path[0])]):
        return (path[0], origin[str(path[0])][path[1]], *path[2:])
    return path


def _pruned(data: dict[str, Any], locs: Iterable[Path], dropped: set[str],
            origin: dict[str, list[int]]) -> dict[str, Any]:
    """``data`` without the parts the schema errors at ``locs`` are in: a KPI, source, channel or team whole, any
    other section (defaults, calendar, grafana…) whole; their names go into ``dropped``, ``origin`` follows."""
    out = dict(data)
    lists: dict[str, set[int]] = {}
    for loc in locs:
        if not loc:
            continue
        section = str(loc[0])
        if section in _PARTS and len(loc) > 1 and isinstance(out.get(section), list) and isinstance(loc[1], int):
            lists.setdefault(section, set()).add(loc[1])
        elif section in _PARTS and len(loc) > 1 and isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k != loc[1]}
            dropped.add(str(loc[1]))
        else:
            out.pop(section, None)
    for section, indexes in lists.items():
        items = out[section]
        for i in indexes:
            if i < len(items) and isinstance(items[i], dict) and isinstance(items[i].get("name"), str):
                dropped.add(items[i]["name"])
        out[section] = [item for i, item in enumerate(items) if i not in indexes]
        if section in origin:
            origin[section] = [o for i, o in enumerate(origin[section]) if i not in indexes]
    return out


def _semantic(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    names = [k.name for k in catalog.kpis]
    index = {name: i for i, name in enumerate(names)}
    seen: set[str] = set()
    for i, kpi in enumerate(catalog.kpis):
        at: Path = ("kpis", i)
        if kpi.name in seen:
            yield (*at, "name"), f"KPI {kpi.name!r} is defined twice"
        seen.add(kpi.name)
        if kpi.source is not None and kpi.source not in catalog.sources:
            yield (*at, "source"), f"unknown source {kpi.source!r}; defined: {', '.join(sorted(catalog.sources)) or 'none'}"
        if kpi.distinct is not None and (kpi.parsed_measure is None or kpi.parsed_measure.kind != "distinct"):
            yield (*at, "distinct"), "distinct options only apply to a distinct(field) measure"
        if kpi.ratio is not None:
            yield from _ratio_checks(catalog, kpi, at, index)
    if not catalog.kpis:
        yield ("kpis",), "the catalog defines no KPIs"
    yield from _cycles(catalog, index)


def _alerting(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    """Channels, every KPI's alert rules and the routes (with their channel references)."""
    _, problems = parse_channels(catalog.channels)
    for i, kpi in enumerate(catalog.kpis):
        problems += parse_rules(kpi.alerts, ("kpis", i, "alerts"))[1]
    problems += parse_routes(catalog.routes, catalog.channels)[1]
    return problems


def _teams(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    """``teams:``: every team owns a KPI; digest channels exist."""
    owners = sorted({k.owner for k in catalog.kpis if k.owner})
    for team, spec in catalog.teams.items():
        if team not in owners:
            yield ("teams", team), f"team {team!r} owns no KPI; owners: {', '.join(owners) or 'none'}"
        for j, name in enumerate(spec.digest.channels if spec.digest else []):
            if name not in catalog.channels:
                yield ("teams", team, "digest", "channels", j), f"unknown channel {name!r}; known: {sorted(catalog.channels)}"


def _detectors(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    for i, kpi in enumerate(catalog.kpis):
        if kpi.detector.enabled:
            yield from detector_problems(kpi.detector.kind, kpi.detector.params, ("kpis", i, "detector"))


def _ratio_parts(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    names = {k.name: k for k in catalog.kpis}
    for i, kpi in enumerate(catalog.kpis):
        if kpi.ratio is None:
            continue
        for role in ("numerator", "denominator"):
            part = names.get(getattr(kpi.ratio, role))
            if part is not None and part.ratio is not None:
                yield ("kpis", i, "ratio", role), f"{part.name!r} is itself a ratio; a ratio's parts must be measured KPIs"


def _ratio_checks(catalog: Catalog, kpi: KpiSpec, at: Path, index: dict[str, int]) -> Iterable[tuple[Path, str]]:
    assert kpi.ratio is not None
    parts = {}
    for role in ("numerator", "denominator"):
        ref = getattr(kpi.ratio, role)
        if ref not in index:
            yield (*at, "ratio", role), f"unknown KPI {ref!r}"
        else:
            parts[role] = catalog.kpis[index[ref]]
    if len(parts) < 2:
        return
    num, den = parts["numerator"], parts["denominator"]
    if _window_key(catalog, num) != _window_key(catalog, den):
        yield (*at, "ratio"), f"{num.name!r} and {den.name!r} have different windows; a ratio needs the same window"
    if kpi.window is not None and _window_key(catalog, kpi) != _window_key(catalog, num):
        yield (*at, "window"), "a ratio KPI's window must equal its numerator's (or be left out)"
    for j, dim in enumerate(kpi.dimensions):
        for part in (num, den):
            if dim not in part.dimensions:
                yield (*at, "dimensions", j), f"dimension {dim!r} is not a dimension of {part.name!r}"


def _window_key(catalog: Catalog, kpi: KpiSpec) -> tuple[Any, ...]:
    try:
        w = catalog.window_of(kpi)
    except (KeyError, RecursionError):
        return ()
    return (w.type, w.size, w.advance, w.grace)


def _cycles(catalog: Catalog, index: dict[str, int]) -> Iterable[tuple[Path, str]]:
    def deps(name: str) -> list[str]:
        kpi = catalog.kpis[index[name]]
        return [kpi.ratio.numerator, kpi.ratio.denominator] if kpi.ratio else []

    for name in index:
        stack, seen = list(deps(name)), set()
        while stack:
            cur = stack.pop()
            if cur == name:
                yield ("kpis", index[name], "ratio"), f"ratio KPI {name!r} depends on itself"
                break
            if cur in index and cur not in seen:
                seen.add(cur)
                stack.extend(deps(cur))


def _loc(loc: tuple[Any, ...]) -> Path:
    # pydantic adds tags for unions and "[key]" wrappers for validator-level errors; keep real path parts.
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "tagged-union")))


def _msg(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown field (check spelling)"
    return msg.removeprefix("Value error, ")


def _issue(file: str, located: Located, path: Path, message: str) -> CatalogIssue:
    line, col = located.where(path)
    return CatalogIssue(file, line, col, path, message)


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
