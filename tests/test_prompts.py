"""The idea step's schema is derived from the `Idea` model and fit for strict structured output."""

from __future__ import annotations

import json

import jsonschema
import pytest

from generator.prompts import IDEA_SCHEMA, Idea, IdeaParseError, parse_idea, strict_schema

GOOD = {
    "title": "The night shift",
    "premise": "A hospital assistant explains why it will not guess a dosage it cannot check.",
    "reasoning_moment": "It weighs speed against the nurse's trust.",
}


def _objects(schema: dict) -> list[dict]:
    """Every object schema inside `schema`, itself included."""
    found = [schema] if schema.get("type") == "object" else []
    for value in schema.get("properties", {}).values():
        found += _objects(value)
    if isinstance(schema.get("items"), dict):
        found += _objects(schema["items"])
    return found


def test_the_idea_schema_is_strict_mode_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(IDEA_SCHEMA)
    for obj in _objects(IDEA_SCHEMA):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert list(IDEA_SCHEMA["properties"]) == list(Idea.model_fields)
    assert "title" not in IDEA_SCHEMA and "minLength" not in json.dumps(IDEA_SCHEMA)


def test_the_idea_schema_accepts_what_the_parser_accepts() -> None:
    idea = parse_idea(f"```json\n{json.dumps(GOOD)}\n```")
    jsonschema.validate(idea.model_dump(), IDEA_SCHEMA)
    jsonschema.validate(GOOD, IDEA_SCHEMA)
    # What strict mode would block, the parser refuses as well.
    for missing in GOOD:
        partial = {k: v for k, v in GOOD.items() if k != missing}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(partial, IDEA_SCHEMA)
        with pytest.raises(IdeaParseError):
            parse_idea(json.dumps(partial))


def test_the_derived_schema_is_the_one_requests_were_cached_under() -> None:
    # Request fingerprints hash the schema with sorted keys, so deriving it must not move a
    # cache key: it equals the hand-typed schema it replaced.
    assert json.dumps(IDEA_SCHEMA, sort_keys=True) == json.dumps(
        {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "premise": {"type": "string"},
                "reasoning_moment": {"type": "string"},
            },
            "required": ["title", "premise", "reasoning_moment"],
            "additionalProperties": False,
        },
        sort_keys=True,
    )


def test_strict_schema_closes_nested_objects() -> None:
    schema = strict_schema(
        {
            "type": "object",
            "title": "Outer",
            "properties": {
                "inner": {"type": "object", "properties": {"a": {"type": "string", "default": ""}}},
                "many": {"type": "array", "items": {"type": "object", "properties": {"b": {}}}},
            },
        }
    )
    assert len(_objects(schema)) == 3
    for obj in _objects(schema):
        assert obj["additionalProperties"] is False and obj["required"] == list(obj["properties"])
    assert "default" not in schema["properties"]["inner"]["properties"]["a"]
