"""Gate 1: the record validates against schemas/record.schema.json, the contract on disk."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from generator.archetype import Archetype
from generator.gates.base import GateContext, GateFailure, GateOutcome
from generator.records import Record
from generator.resources import schemas_dir

NAME = "schema"


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema: dict[str, Any] = json.loads((schemas_dir() / "record.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def check(record: Record, archetype: Archetype) -> list[GateFailure]:
    errors = list(_validator().iter_errors(record.model_dump(mode="json")))
    return [
        GateFailure(
            NAME, "schema", f"{'.'.join(map(str, e.absolute_path)) or 'record'}: {e.message}"
        )
        for e in errors
    ]


class SchemaGate:
    """The final record against the contract on disk; runs last, on every document."""

    name = NAME
    checks: tuple[str, ...] = ()
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        return GateOutcome(tuple(check(record, context.archetype)))
