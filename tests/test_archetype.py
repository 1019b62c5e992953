"""The archetype values (generator/archetype.py): frozen, and hashed by content, not by file."""

from __future__ import annotations

import pydantic
import pytest

from generator import spec
from tests.conftest import LIBRARY


def test_an_archetype_is_frozen_and_its_hash_ignores_where_it_came_from() -> None:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    with pytest.raises(pydantic.ValidationError):
        archetype.id = "another"  # type: ignore[misc]
    moved = archetype.model_copy(update={"source": "elsewhere.yaml"})
    assert moved.spec_hash == archetype.spec_hash
    renamed = archetype.model_copy(update={"name": "Another Tutor"})
    assert renamed.spec_hash != archetype.spec_hash


def test_a_trait_and_a_catalogue_genre_are_found_by_id() -> None:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    first = archetype.traits[0]
    assert archetype.trait(first.id) is first
    defaults = spec.load_defaults()
    assert defaults.genre(defaults.genres[0].id) == defaults.genres[0]
    assert defaults.genre("no-such-genre") is None
