"""Deterministic ids are uuid5 exactly: consumers written against uuid5 (and
logs written before the fast path) must see the same ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from events.base import ID_NAMESPACE, deterministic_id, uuid_of, uuid_text

parts = st.lists(st.one_of(st.text(), st.integers(), st.uuids()), min_size=1, max_size=4)


@given(parts)
def test_deterministic_id_is_uuid5_of_the_joined_parts(values: list[object]) -> None:
    expected = uuid.uuid5(ID_NAMESPACE, ":".join(str(v) for v in values))
    made = deterministic_id(*values)
    assert made == expected
    assert str(made) == str(expected)
    assert hash(made) == hash(expected)
    assert made.version == 5
    assert uuid.UUID(str(made)) == made


@given(st.uuids())
def test_uuid_of_parses_as_uuid_does(value: uuid.UUID) -> None:
    assert uuid_of(str(value)) == value


@given(st.uuids())
def test_uuid_text_is_str_of_the_uuid(value: uuid.UUID) -> None:
    assert uuid_text(value) == str(value)
    assert uuid_text(uuid.UUID(int=value.int)) == str(value)  # remembered by value
