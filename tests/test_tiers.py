"""The notebook tiers: lecture for a person, smoke for the tests, full on request."""
from __future__ import annotations

import pytest

from gancourse.tiers import TIERS, check_tier, default_tier, pick, smoke_mode


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("CI", "GANCOURSE_SMOKE", "GANCOURSE_TIER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_person_gets_the_lecture_tier(clean_env):
    assert default_tier() == "lecture" and not smoke_mode()


@pytest.mark.parametrize("name,value", [("CI", "true"), ("CI", ""), ("GANCOURSE_SMOKE", "1")])
def test_the_tests_get_the_smoke_tier(clean_env, name, value):
    clean_env.setenv(name, value)
    assert default_tier() == "smoke" and smoke_mode()


def test_an_explicit_tier_wins(clean_env):
    clean_env.setenv("CI", "true")
    clean_env.setenv("GANCOURSE_TIER", " full ")
    assert default_tier() == "full"


def test_an_unknown_tier_is_named(clean_env):
    clean_env.setenv("GANCOURSE_TIER", "huge")
    with pytest.raises(ValueError, match="unknown GANCOURSE_TIER 'huge'; valid options are: 'smoke', 'lecture', 'full'"):
        default_tier()
    with pytest.raises(ValueError, match="unknown tier 'medium'"):
        check_tier("medium")


def test_pick():
    assert [pick(t, smoke=1, lecture=2, full=3) for t in TIERS] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown tier"):
        pick("Full", smoke=1, lecture=2, full=3)
    with pytest.raises(TypeError):
        pick("full", smoke=1, lecture=2)  # every tier needs its value
