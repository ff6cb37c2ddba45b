"""Properties of the rule chains over the whole Unicode range (hypothesis)."""

from __future__ import annotations

import pytest
import unicodedata2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyshift.core.text.normalize import DEFAULT_RULES, RULES, Normalizer, apply_changes
from keyshift.core.text.unicode_chars import IGNORABLE_RE

#: Characters that make normalization interesting, mixed into otherwise random text.
TRICKY = (
    " \t\n\r\x0b\x0c\x1c\x1f\x85\x00\x1b\x7f\x9f\u00a0\u00ad\u034f\u115f\u1160\u3164\uffa0"
    "\u180b\u180e\u200b\u200c\u200d\u200e\u202a\u202f\u2060\u2066\u3000\u2028\u1680\ufeff\ufe0f"
    "\U000e0101\U000e0041\u0301\u0308\u0316\u0327\u0345\u0344\u0f73\u0b3e\u0b47\u1100\u1161"
    "\u11a8\uac00\u30ab\uff9e\u309b\u00a8\u00b4\u1fbe\u0390\u03d3\u01f0\u1e9e\u00df\u0130\u0131"
    "\ufb01\u2126\u212a\u00b2\uff21\uff41\uff11\u2007\ufdfa\u0440\u0430\u0443\u1e00\u0041\u0061"
)
text = st.text(
    st.one_of(st.characters(), st.sampled_from(TRICKY), st.sampled_from(TRICKY)),
    max_size=24,
)
ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=24)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHAINS = [
    DEFAULT_RULES,
    DEFAULT_RULES + ("casefold",),
    ("casefold",) + DEFAULT_RULES,
    ("fold-space", "nfkc", "strip-ignorable"),
    ("nfkc", "casefold"),
]
NORMALIZERS = {rules: Normalizer(rules) for rules in CHAINS}
FULL_CHAINS = [c for c in CHAINS if set(DEFAULT_RULES) <= set(c)]


@pytest.mark.parametrize("rules", CHAINS, ids="+".join)
@FAST
@given(raw=text)
@example(raw="\u01f0")
@example(raw="\u00a8\u0301")
@example(raw="\u1fbe\u0301")
@example(raw="\u0345\u0301 \u00a0")
def test_idempotent(rules: tuple[str, ...], raw: str) -> None:
    norm = NORMALIZERS[rules]
    once = norm.canonical(raw)
    assert norm.canonical(once) == once
    result = norm.explain(raw)
    assert result.canonical == once
    assert norm.explain(once).changes == ()


@pytest.mark.parametrize("rules", FULL_CHAINS, ids="+".join)
@FAST
@given(raw=text)
def test_canonical_form_is_clean(rules: tuple[str, ...], raw: str) -> None:
    out = NORMALIZERS[rules].canonical(raw)
    assert IGNORABLE_RE.search(out) is None
    assert not any(ch.isspace() and ch != " " for ch in out)
    assert "  " not in out and out == out.strip(" ")
    assert not any(unicodedata2.category(ch) in ("Cf", "Cc") for ch in out)


@FAST
@given(raw=text)
def test_default_form_is_nfkc_and_one_pass_suffices(raw: str) -> None:
    norm = NORMALIZERS[DEFAULT_RULES]
    assert norm.single_pass
    one_pass = raw
    for name in DEFAULT_RULES:
        one_pass = RULES[name].fast(one_pass)
    assert norm.canonical(raw) == one_pass
    assert unicodedata2.normalize("NFKC", one_pass) == one_pass


@pytest.mark.parametrize("rules", CHAINS, ids="+".join)
@FAST
@given(raw=text)
def test_changes_iff_changed(rules: tuple[str, ...], raw: str) -> None:
    result = NORMALIZERS[rules].explain(raw)
    assert result.changed == (raw != result.canonical) == bool(result.changes)
    for change in result.changes:
        assert change.rule in rules
        assert change.original and change.original != change.replacement
        assert change.describe()
        assert change.to_dict()["description"] == change.describe()


@pytest.mark.parametrize("name", list(RULES))
@FAST
@given(raw=text)
def test_each_rule_reports_what_it_did(name: str, raw: str) -> None:
    rule = RULES[name]
    out, changes = rule.apply(raw)
    assert out == rule.fast(raw)
    assert apply_changes(raw, changes) == out
    positions = [c.position for c in changes]
    assert positions == sorted(positions)
    for before, after in zip(changes, changes[1:]):
        assert before.position + len(before.original) <= after.position
    assert bool(changes) == (out != raw)


@pytest.mark.parametrize("rules", CHAINS, ids="+".join)
@FAST
@given(raw=ascii_text)
def test_ascii_shortcut_matches_full_rules(rules: tuple[str, ...], raw: str) -> None:
    norm = NORMALIZERS[rules]
    assert norm.canonical(raw) == norm.explain(raw).canonical


@FAST
@given(raw=text)
def test_suspicious_flags_never_change_text(raw: str) -> None:
    norm = NORMALIZERS[DEFAULT_RULES]
    result = norm.explain(raw)
    assert result.canonical == norm.canonical(raw)
    assert all(isinstance(flag, str) and flag for flag in result.suspicious)
