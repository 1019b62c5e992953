"""The schema gate (generator/gates/schema.py): the final record against
schemas/record.schema.json."""

from __future__ import annotations

from generator import spec
from generator.gates.schema import check
from tests.conftest import LIBRARY
from tests.support.gates import record_for


def test_a_valid_record_passes_and_a_broken_one_names_the_field() -> None:
    archetype = spec.load_spec(LIBRARY / "candid-counsel.yaml")
    record = record_for("The ferry left at seven.", archetype)
    assert check(record, archetype) == []
    broken = record.model_copy(update={"id": "not-hex"})
    failures = check(broken, archetype)
    assert [(f.gate, f.reason) for f in failures] == [("schema", "schema")]
    assert failures[0].detail.startswith("id: ")
