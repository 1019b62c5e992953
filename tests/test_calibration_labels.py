"""The labelled documents `archetypes calibrate` reads (generator/calibration_labels.py): a bad
line is one clear error naming the line, and a file with nothing to measure is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.support.calibration import labelled_row


def _labels(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return path


GOOD_ROW = labelled_row("good-pt-diary-fractions")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "labels.jsonl:2: not JSON"),
        ("[1, 2]", "labels.jsonl:2: expected a JSON object"),
        ({**GOOD_ROW, "label": None, "reason": None}, "labels.jsonl:2: label is not filled in"),
        ({k: v for k, v in GOOD_ROW.items() if k != "genre"}, "labels.jsonl:2: missing genre"),
        ({**GOOD_ROW, "label": "maybe"}, "labels.jsonl:2: label 'maybe' must be"),
        ({**GOOD_ROW, "reason": "meta"}, "labels.jsonl:2: label accept with reason 'meta'"),
        ({**GOOD_ROW, "archetype_id": "nobody"}, "labels.jsonl:2: unknown archetype_id 'nobody'"),
        ({**GOOD_ROW, "trait_focus": "flying"}, "labels.jsonl:2: patient-tutor has no trait"),
        ({**GOOD_ROW, "genre": "sonnet"}, "labels.jsonl:2: patient-tutor has no genre 'sonnet'"),
        ({**GOOD_ROW, "text": ""}, "labels.jsonl:2: text must be a non-empty string"),
    ],
)
def test_a_bad_labels_line_is_one_clear_error(tmp_path: Path, bad: object, message: str) -> None:
    path = _labels(tmp_path, GOOD_ROW, bad)
    result = run_cli("calibrate", str(path), "--judge", "off")
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_calibrate_refuses_what_it_cannot_measure(tmp_path: Path) -> None:
    path = _labels(tmp_path, GOOD_ROW)
    advisory = run_cli("calibrate", str(path), "--judge", "advisory")
    assert advisory.returncode == 2 and "--judge" in advisory.stderr
    nowhere = run_cli(
        "calibrate", str(path), "--judge", "off", "--out", str(tmp_path / "no" / "x.json")
    )
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    missing = run_cli("calibrate", str(tmp_path / "absent.jsonl"), "--judge", "off")
    assert missing.returncode == 2 and "absent.jsonl: no such file" in missing.stderr
    empty = _labels(tmp_path, "")
    none = run_cli("calibrate", str(empty), "--judge", "off")
    assert none.returncode == 2 and "no labelled documents" in none.stderr
