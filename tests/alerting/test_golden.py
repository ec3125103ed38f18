"""Golden payloads of every channel in zh and en, and what every one of them must satisfy.

``KPIMON_UPDATE_GOLDEN=1 pytest tests/alerting/test_golden.py`` rewrites ``tests/alerting/golden/``; otherwise
each payload must equal its file, so a change to a message shows up as a diff in review. The property checks
run over the golden files themselves: no ``{placeholder}`` left, one language per message, formatted numbers,
no negative band of a count, every time local (UTC+8 here).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.alerting.golden_cases import CASES, ONE_LANGUAGE_TITLES, PAYLOADS

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KPIMON_UPDATE_GOLDEN") == "1"
ALL = [(ch, case, lang) for ch in PAYLOADS for case in CASES for lang in ("en", "zh")]
# The Alertmanager webhook JSON is for machines: its annotations stay English and in UTC by design.
HUMAN = [c for c in ALL if c[0] != "webhook"]


def _path(channel: str, case: str, lang: str) -> Path:
    return GOLDEN / f"{channel}.{case}.{lang}.json"


def _render(channel: str, case: str, lang: str) -> Any:
    return json.loads(json.dumps(PAYLOADS[channel](CASES[case](lang)), ensure_ascii=False))


@pytest.mark.parametrize(("channel", "case", "lang"), ALL)
def test_payload_matches_golden_file(channel: str, case: str, lang: str) -> None:
    path, payload = _path(channel, case, lang), _render(channel, case, lang)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} missing: run KPIMON_UPDATE_GOLDEN=1 pytest {__file__}"
    assert payload == json.loads(path.read_text(encoding="utf-8")), f"{path.name} changed (KPIMON_UPDATE_GOLDEN=1)"


def test_no_stale_golden_files() -> None:
    expected = {_path(*c).name for c in ALL}
    assert {p.name for p in GOLDEN.glob("*.json")} == expected


# ---- properties over the golden files -------------------------------------------------------------------

_VISIBLE_KEYS = {"text", "title", "value", "content", "plain", "html", "Subject"}
_URL = re.compile(r"https?://[^\s)\"'<>|]+")
_TAG = re.compile(r"<[^>]+>")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# English words of the templates and of the old summaries ("0 is below 0.02", "is within limits", ...)
_EN_WORDS = re.compile(
    r"\b(below|above|outside|within|limits|normal|expected|range|anomaly|FIRING|RESOLVED|ESCALATED|critical|"
    r"warning|Value|Severity|Since|Window|Owner|Series|Impact|dashboard|lasted|total|orders|tickets|no data)\b"
)


def _visible(node: Any, key: str = "") -> list[str]:
    """The strings a person sees (card texts, titles, fact values, mail bodies), without URLs and HTML tags."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _visible(v, k)]
    if isinstance(node, list):
        return [s for v in node for s in _visible(v, key)]
    if isinstance(node, str) and key in _VISIBLE_KEYS:
        return [_TAG.sub(" ", _URL.sub(" ", node))]
    return []


def _golden(channel: str, case: str, lang: str) -> Any:
    return json.loads(_path(channel, case, lang).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("channel", "case", "lang"), ALL)
def test_no_placeholder_left(channel: str, case: str, lang: str) -> None:
    raw = _path(channel, case, lang).read_text(encoding="utf-8")
    assert not re.search(r"\{[A-Za-z_][A-Za-z0-9_]*\}", raw)


@pytest.mark.parametrize(("channel", "case", "lang"), HUMAN)
def test_one_language_per_message(channel: str, case: str, lang: str) -> None:
    text = "\n".join(_visible(_golden(channel, case, lang)))
    assert text.strip()
    if lang == "zh":
        assert _EN_WORDS.findall(text) == []
        assert _CJK.search(text)
    else:
        for title in ONE_LANGUAGE_TITLES:
            text = text.replace(title, "")
        assert _CJK.findall(text) == []


@pytest.mark.parametrize(("channel", "case", "lang"), HUMAN)
def test_numbers_are_formatted(channel: str, case: str, lang: str) -> None:
    text = "\n".join(_visible(_golden(channel, case, lang)))
    assert not re.search(r"\d\.\d{4,}", text), "a raw float"
    assert not re.search(r"\d{5,}", text.replace("-", " ")), "a big number without separators"
    assert not re.search(r"(range|区间) [−-]\d", text), "a band below the possible range"


@pytest.mark.parametrize(("channel", "case", "lang"), HUMAN)
def test_times_are_local(channel: str, case: str, lang: str) -> None:
    text = "\n".join(_visible(_golden(channel, case, lang)))
    times = re.findall(r"\d{2}:\d{2}(?::\d{2})? (UTC[+-]?[0-9:]*)", text)
    assert times and set(times) == {"UTC+8"}, times
