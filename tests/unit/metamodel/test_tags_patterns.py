"""Tag path patterns: the same answers as the old regular expressions, in linear time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metamodel.tags import MAX_PATTERN_LENGTH, PatternError, PatternSet, compile_pattern


def _regex(pattern: str) -> re.Pattern[str]:
    """The previous implementation (backtracking), kept here as the reference."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^.]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^.]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(f"^{out}$")


@pytest.mark.parametrize("pattern,path,expected", [
    ("pad7.*.pip", "pad7.w1.pip", True),
    ("pad7.*.pip", "pad7.ua.w1.pip", False),
    ("pad7.**", "pad7.ua.w1.pip", True),
    ("pad7.**", "pad7", False),
    ("**.pip", "pad7.w1.pip", True),
    ("**.pip", "pip", False),
    ("pad7.**.pip", "pad7.pip", False),
    ("pad7.**.pip", "pad7.a.b.c.pip", True),
    ("pad7.**.w1.**.pip", "pad7.x.w1.y.w1.z.pip", True),
    ("pad7.**.w1.**.pip", "pad7.w1.pip", False),
    ("**", "anything.at.all", True),
    ("w?.pip", "w1.pip", True),
    ("w?.pip", "w12.pip", False),
    ("*a*b*", "xaybz", True),
    ("*a*b*", "xbya", False),
    ("pad7.w1.pip", "pad7.w1.pip", True),
    ("pad7.w1.pip", "pad7.w1.pipe", False),
    ("pad7.w1", "pad7.w1.pip", False),
    ("**.**", "a", False),
    ("**.**", "a.b", True),
    ("*", "a", True),
    ("*", "a.b", False),
    ("a*?c", "abc", True),
    ("a*?c", "ac", False),
    ("********", "a.b.c", True),  # a segment of stars alone is **
])
def test_examples(pattern: str, path: str, expected: bool) -> None:
    assert compile_pattern(pattern).match(path) is expected
    assert (_regex(pattern).match(path) is not None) is expected


SEGMENT = st.text(alphabet="ab?*", min_size=0, max_size=4).filter(lambda s: "**" not in s)
PATTERN = st.lists(st.one_of(SEGMENT, st.just("**")), min_size=1, max_size=6).map(".".join)
PATH = st.lists(st.text(alphabet="ab", min_size=1, max_size=4), min_size=1,
                max_size=7).map(".".join)


@given(PATTERN, PATH)
def test_same_answers_as_the_regular_expressions(pattern: str, path: str) -> None:
    assert compile_pattern(pattern).match(path) == (_regex(pattern).match(path) is not None)


@pytest.mark.parametrize("pattern,text", [
    ("pad**", "'**' must be a whole segment"),
    ("****************#", "'**' must be a whole segment"),
    ("a." + "b" * MAX_PATTERN_LENGTH, f"the limit is {MAX_PATTERN_LENGTH}"),
])
def test_refused_patterns(pattern: str, text: str) -> None:
    with pytest.raises(PatternError, match=re.escape(text)):
        compile_pattern(pattern)


def test_hostile_patterns_cost_linear_time() -> None:
    """64 ``**`` (and many stars inside a segment) over 10,000 tags: well under 50 ms of CPU.

    The reference regular expressions take seconds to minutes on the same input; CPU time,
    not wall time, so a busy machine does not fail the test.
    """
    paths = [f"pad{i % 10}.w{i}.{name}" for i in range(2000)
             for name in ("pip", "thp", "frequency", "motor_current", "a" * 24)]
    cases = {".".join(["**"] * 64): 0, "*" * 128 + ".x": 0,
             "*a*a*a*a*a*a*a*a*a*a*a*a*a*b.**": 0, "**.*a*a*a*a*a*a*a*a*a*a*a*a*a*b": 0,
             "**.a.**.a.**.a.**.a.**.a.**.a.**.b": 0, "**.*a*a*a*a*a*a*a*a*a*a*a*a*a*": 2000,
             "**.pip": 2000, "pad3.**": 1000}
    for text, expected in cases.items():
        pattern = compile_pattern(text)
        t0 = time.process_time()
        hits = sum(1 for p in paths if pattern.match(p))
        spent = time.process_time() - t0
        assert hits == expected, text
        assert spent < 0.05, f"{text}: {spent * 1000:.1f} ms of CPU over {len(paths)} tags"


def test_pattern_set_matches_any() -> None:
    both = PatternSet(["pad7.*.pip", "pad8.**"])
    assert both.match("pad7.w1.pip") and both.match("pad8.x.y")
    assert not both.match("pad9.w1.pip")
    assert not PatternSet([])
