"""Paths to the files the package ships (generator/resources.py)."""

from __future__ import annotations

from generator.resources import library_dir
from tests.conftest import LIBRARY


def test_library_dir_points_at_the_starter_library() -> None:
    assert library_dir().resolve() == LIBRARY.resolve()
