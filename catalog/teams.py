"""Owner teams: the alert budget a team agreed to and the review (复盘) digest it gets.

A KPI's ``owner`` is its team (the alerts' ``team`` label). ``teams:`` says more about a team, all optional::

    teams:
      sales:
        budget: 5/week                  # agreed alerts (incidents fired) per day or week; over it, the review
                                        # proposes a sensitivity or threshold change
        digest:
          every: weekly                 # daily (the previous day) or weekly (the previous Monday-Sunday week),
                                        # in the catalog's defaults.timezone
          channels: [sales_mail, sales_dingtalk]
          language: zh                  # default: defaults.language
        auto_tune: true                 # apply threshold proposals whose backtest fires fewer alerts (audited);
                                        # sensitivity proposals are catalog changes and stay proposals

:mod:`catalog.load` checks the references: a team that owns no KPI, a digest channel that is not in
``channels``.

Examples
--------
>>> parse_budget("5/week")
Budget(count=5, per='week')
>>> parse_budget("5/week").allowed(3.5 * 86400)
2.5
>>> parse_budget("five a week")
Traceback (most recent call last):
...
ValueError: a budget is a count per day or week, like "5/week" or "2/day"; got 'five a week'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.channels import Language

__all__ = ["PER_S", "Budget", "DigestSpec", "TeamSpec", "parse_budget"]

PER_S = {"day": 86400.0, "week": 7 * 86400.0}
_BUDGET = re.compile(r"^\s*(\d+)\s*/\s*(day|week)\s*$")


@dataclass(frozen=True, slots=True)
class Budget:
    """``count`` alerts per ``per`` (day or week)."""

    count: int
    per: Literal["day", "week"]

    def allowed(self, period_s: float) -> float:
        """How many alerts the budget allows over a period of ``period_s`` seconds (pro rata)."""
        return self.count * period_s / PER_S[self.per]

    def __str__(self) -> str:
        return f"{self.count}/{self.per}"


def parse_budget(text: str) -> Budget:
    """``"5/week"`` -> ``Budget(5, "week")``; ``ValueError`` with the expected form otherwise."""
    found = _BUDGET.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f'a budget is a count per day or week, like "5/week" or "2/day"; got {text!r}')
    per: Literal["day", "week"] = "day" if found.group(2) == "day" else "week"
    return Budget(int(found.group(1)), per)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DigestSpec(_Strict):
    """When and where a team's review digest goes."""

    every: Literal["daily", "weekly"] = "weekly"
    channels: list[str] = Field(min_length=1)
    language: Language | None = None  # None: the catalog's defaults.language


class TeamSpec(_Strict):
    """One owner team's agreements (see the module docstring)."""

    budget: str | None = None
    digest: DigestSpec | None = None
    # apply the review's threshold proposals by itself at the end of each period (the digest's, else weekly) when
    # their backtest fires fewer alerts; audited as "kpimon auto-tune" with the figures. Off unless said here.
    auto_tune: bool = False

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str | None) -> str | None:
        if value is not None:
            parse_budget(value)
        return value

    @property
    def parsed_budget(self) -> Budget | None:
        return None if self.budget is None else parse_budget(self.budget)
