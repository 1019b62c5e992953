"""The hand-labelled calibration set, shared by the calibrate and labels tests."""

from __future__ import annotations

import json

from tests.conftest import REPO

LABELS = REPO / "calibration" / "labels.jsonl"
ROWS = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]


def labelled_row(label_id: str) -> dict:
    """The row of the calibration set with this id."""
    return next(r for r in ROWS if r["id"] == label_id)
