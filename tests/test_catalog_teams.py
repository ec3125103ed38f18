"""``teams:`` in the catalog: budgets and review digests, with located errors like every other section."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catalog import parse_catalog
from catalog.teams import Budget
from kpimon.cli import main
from tests.test_catalog import BASE, issues

OWNED = BASE.replace("    measure: count\n", "    measure: count\n    owner: sales\n") + """\
channels:
  mail: {type: email, host: localhost, from: kpimon@example.com, to: [sales@example.com]}
"""


def test_a_team_with_budget_and_digest() -> None:
    cat = parse_catalog(OWNED + """\
teams:
  sales:
    budget: 5/week
    digest: {every: daily, channels: [mail], language: zh}
""")
    team = cat.teams["sales"]
    assert team.parsed_budget == Budget(5, "week") and team.digest is not None and team.digest.every == "daily"
    assert cat.team_language("sales") == "zh" and cat.team_language("ops") == "en"
    assert [k.name for k in cat.team_kpis("sales")] == ["orders"]


def test_team_errors_name_line_and_field() -> None:
    found = issues(OWNED + """\
teams:
  sales:
    budget: five a week
  nobody:
    digest: {every: hourly, channels: []}
  ghosts: {}
""")
    assert (14, "teams.sales.budget", 'a budget is a count per day or week, like "5/week" or "2/day"; '
            "got 'five a week'") in found, found
    assert any(ln == 16 and path == "teams.nobody.digest.every" for ln, path, _ in found), found
    assert any(ln == 16 and path == "teams.nobody.digest.channels" and "at least 1" in msg
               for ln, path, msg in found), found
    # references are checked once the schema holds (a team mapping is located at its first line)
    refs = issues(OWNED + """\
teams:
  ghosts:
    digest: {channels: [mail, pager]}
""")
    assert refs == [(14, "teams.ghosts", "team 'ghosts' owns no KPI; owners: sales"),
                    (14, "teams.ghosts.digest.channels.1", "unknown channel 'pager'; known: ['mail']")], refs


def test_check_reports_team_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(OWNED + "teams:\n  sales: {budget: 5/month}\n")
    result = CliRunner().invoke(main, ["check", str(bad)])
    assert result.exit_code == 2 and f"{bad}:13:" in result.output and "teams.sales.budget" in result.output
