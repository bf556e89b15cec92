"""Reading single legacy values: scales, tags and traits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.hybrid.legacy import Scale
from pjai.hybrid.legacy.traits import traits
from pjai.hybrid.legacy.values import Unreadable, tags, time_value


@pytest.mark.parametrize(
    ("values", "top"),
    [
        ([0.8, 0.35, 0.5, None], 1),  # fractions: the 0-1 release
        ([0.8, 1, 0, 7], 1),  # one stray value does not change the scale
        (["0.25", "0.5"], 1),  # numeric text counts
        ([80, 35, 50], 100),  # the 0-100 release
        ([0, 1, 1, 0], 100),  # no fraction: nothing says 0-1
        ([0.5, 20, 40, 60], 100),  # most values are above 1
        ([None, "high"], 100),  # nothing to go by: the app's own 0-100
        ([], 100),
    ],
)
def test_a_scale_is_read_from_the_values_of_a_column(values: list[object], top: int) -> None:
    assert Scale.detect(values).top == top


def test_out_of_range_is_unreadable_not_clamped() -> None:
    assert Scale(100).fraction(80) == 0.8
    assert Scale(1).fraction(0.8) == 0.8
    for scale, value in ((Scale(100), 150), (Scale(100), -3), (Scale(1), 7)):
        with pytest.raises(Unreadable, match=f"outside the {scale.name} scale"):
            scale.fraction(value)


def test_a_fraction_of_one_on_a_0_100_scale_is_reported_not_divided() -> None:
    # A 0-100 database that kept rows of a 0-1 release: 0.6 is not 0.006.
    with pytest.raises(Unreadable, match="may be on the 0-1 scale"):
        Scale(100).fraction(0.6)
    assert (Scale(100).fraction(0), Scale(100).fraction(1)) == (0.0, 0.01)


def test_eight_digits_are_a_compact_date_not_seconds() -> None:
    assert time_value("20240102") == datetime(2024, 1, 2, tzinfo=UTC)
    assert time_value("1704153600") == datetime(2024, 1, 2, tzinfo=UTC)


# Comma-separated text that starts like JSON ("[", "{") is read as JSON.
safe_tag = st.text(
    st.characters(codec="utf-8", exclude_characters=",", exclude_categories=("Z", "C")),
    min_size=1,
    max_size=20,
).filter(lambda tag: not tag.startswith(("[", "{")))


@given(st.lists(safe_tag, max_size=10))
def test_a_json_array_and_comma_separated_text_give_the_same_tags(names: list[str]) -> None:
    from_json, json_problems = tags(json.dumps(names))
    from_text, text_problems = tags(", ".join(names))
    assert from_json == from_text == names
    assert json_problems == text_problems == []


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("work", ["work"]),
        (" work , urgent,,", ["work", "urgent"]),
        ('["work", " urgent "]', ["work", "urgent"]),
        ("42", ["42"]),
        ("", []),
        ("[]", []),
        (None, []),
    ],
)
def test_tags_are_read_as_json_or_comma_separated(value: object, kept: list[str]) -> None:
    assert tags(value) == (kept, [])


def test_every_trait_shape_of_the_desktop_app_maps() -> None:
    by_name = traits(json.dumps({"Openness": 0.9, "humor": 0.5}))
    assert (by_name.big_five, by_name.custom, by_name.dominant) == (
        {"openness": 90},
        {"humor": 50},
        [],
    )
    names = traits(json.dumps(["curious", "patient"]))
    assert (names.big_five, names.custom, names.dominant) == ({}, {}, ["curious", "patient"])
    objects = traits(
        json.dumps([{"name": "helpful", "value": 80, "category": "custom", "id": "t1"}])
    )
    assert (objects.custom, objects.problems) == ({"helpful": 80}, [])
    assert traits("[]") == traits(None) == traits("")
