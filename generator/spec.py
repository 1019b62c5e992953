"""YAML archetype specs -> validated, defaults-resolved `Archetype` values.

Every problem is reported as `path:line:col: message`, and all problems of all files are
collected before anything is raised, so an author fixes a spec in one pass.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from generator.archetype import (
    Archetype,
    Defaults,
    Genre,
    JudgeThresholds,
    Nature,
    Oversight,
    Targets,
    Trait,
    Voice,
)
from generator.errors import Problem, SpecError, UserError
from generator.resources import data_file, library_dir, schemas_dir
from generator.yamlpos import JsonPath, LocatedYaml, YamlLoadError, load_located

SPEC_SUFFIXES = (".yaml", ".yml")


@functools.cache
def load_defaults() -> Defaults:
    """The shared defaults shipped in the package (generator/data/defaults.yaml)."""
    located = load_located(data_file("defaults.yaml"))
    return Defaults.model_validate(located.data)


@functools.cache
def archetype_schema() -> dict[str, Any]:
    with (schemas_dir() / "archetype.schema.json").open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


# ---------------------------------------------------------------------------------------------
# Finding spec files


def find_spec_files(paths: Sequence[Path]) -> list[Path]:
    """Expand files and folders into spec files. Raises UserError for missing or empty inputs."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or directory")
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                raise UserError(
                    f"{path}: no archetype specs (*.yaml) in this folder; "
                    "create one with `archetypes new ID --dir " + str(path) + "`"
                )
            files.extend(found)
        else:
            files.append(path)
    unique: dict[Path, None] = dict.fromkeys(p.resolve() for p in files)
    return [Path(p) for p in unique]


def resolve_spec_ref(ref: str) -> Path:
    """`ID_OR_PATH` -> a spec file: an existing path, else an id in the starter library."""
    as_path = Path(ref)
    if as_path.exists():
        return as_path
    for suffix in SPEC_SUFFIXES:
        candidate = library_dir() / f"{ref}{suffix}"
        if candidate.exists():
            return candidate
    raise UserError(f"{ref}: no such spec file, and no archetype with that id in {library_dir()}")


# ---------------------------------------------------------------------------------------------
# Loading


def load_specs(paths: Sequence[Path]) -> list[Archetype]:
    """Load, validate and resolve every spec under `paths`. Raises SpecError listing all problems."""
    problems: list[Problem] = []
    archetypes: list[Archetype] = []
    seen_ids: dict[str, Path] = {}
    for file in find_spec_files(paths):
        try:
            located = load_located(file)
        except YamlLoadError as exc:
            problems.extend(exc.problems)
            continue
        file_problems = check_document(located)
        problems.extend(file_problems)
        spec_id = located.data.get("id") if isinstance(located.data, dict) else None
        if isinstance(spec_id, str):
            if spec_id in seen_ids:
                problems.append(
                    located.problem(
                        ("id",), f"duplicate id '{spec_id}' (also in {seen_ids[spec_id]})"
                    )
                )
            seen_ids.setdefault(spec_id, file)
        if not file_problems:
            archetypes.append(resolve(located.data, source=file))
    if problems:
        raise SpecError(problems)
    return archetypes


def load_spec(path: Path) -> Archetype:
    return load_specs([path])[0]


def check_document(located: LocatedYaml) -> list[Problem]:
    """Every problem in one parsed spec: schema violations first, then semantic checks."""
    if not isinstance(located.data, dict):
        kind = _json_type(located.data)
        return [located.problem((), f"expected a mapping of archetype fields, got {kind}")]
    problems = schema_problems(located)
    problems.extend(semantic_problems(located))
    return problems


def schema_problems(located: LocatedYaml) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(archetype_schema())
    problems: list[Problem] = []
    for error in validator.iter_errors(located.data):
        problems.extend(_describe(error, located))
    # One value can break two rules that read the same to a person ("must not be empty").
    return list(dict.fromkeys(problems))


def _describe(error: jsonschema.ValidationError, located: LocatedYaml) -> list[Problem]:
    """Turn one jsonschema error into located, human-sized messages."""
    at: JsonPath = tuple(error.absolute_path)
    where = _dotted(at)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    match error.validator:
        case "additionalProperties":
            allowed = sorted(schema.get("properties", {}))
            extra = [k for k in instance if k not in schema.get("properties", {})]
            return [
                located.problem(
                    (*at, key),
                    f"unknown key '{key}'{' in ' + where if where else ''} "
                    f"(allowed: {', '.join(allowed)})",
                )
                for key in extra
            ]
        case "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else error.message
            inside = f" in {where}" if where else ""
            return [located.problem(at, f"missing required key '{missing}'{inside}")]
        case "type":
            expected = error.validator_value
            hint = ""
            if expected == "string" and isinstance(instance, int | float):
                hint = " (quote it)"
            return [
                located.problem(
                    at,
                    f"{where or 'spec'}: expected {_article(expected)}, got {_json_type(instance)}{hint}",
                )
            ]
        case "minItems":
            return [
                located.problem(at, f"{where}: must list at least {error.validator_value} item(s)")
            ]
        case "maxItems":
            return [located.problem(at, f"{where}: at most {error.validator_value} items allowed")]
        case "minLength" | "pattern" if (
            schema.get("pattern") == "\\S" or error.validator == "minLength"
        ):
            return [located.problem(at, f"{where}: must not be empty")]
        case "pattern":
            return [located.problem(at, f"{where}: {instance!r} {_pattern_hint(at)}")]
        case "minimum" | "maximum":
            return [located.problem(at, f"{where}: {error.message}")]
        case _:
            return [located.problem(at, f"{where}: {error.message}")]


def _pattern_hint(at: JsonPath) -> str:
    last = at[-1] if at else ""
    if last == "version":
        return 'is not a version like "1.0.0"'
    if last == "language":
        return "is not a language code like en or pt-BR"
    return "must be a slug: lowercase letters, digits and single hyphens (e.g. patient-tutor)"


def semantic_problems(located: LocatedYaml) -> list[Problem]:
    """Checks the schema cannot express. Written defensively: the data may also be malformed."""
    data: dict[str, Any] = located.data
    problems: list[Problem] = []
    spec_id = data.get("id")
    if isinstance(spec_id, str) and spec_id != located.path.stem:
        problems.append(
            located.problem(
                ("id",),
                f"id '{spec_id}' must equal the file name stem '{located.path.stem}' "
                f"(rename the file to {spec_id}.yaml or change the id)",
            )
        )
    problems.extend(_duplicate_ids(located, "traits", "trait id"))
    problems.extend(_duplicate_ids(located, "genres", "genre id"))
    for key in ("situations", "settings", "narrators", "ai_names"):
        problems.extend(_duplicate_entries(located, key))
    problems.extend(_genre_problems(located))
    targets = data.get("targets")
    if isinstance(targets, dict) and ("min_words" in targets or "max_words" in targets):
        low = targets.get("min_words", Targets().min_words)
        high = targets.get("max_words", Targets().max_words)
        if isinstance(low, int) and isinstance(high, int) and low >= high:
            given = "min_words" if "min_words" in targets else "max_words"
            problems.append(
                located.problem(
                    ("targets", given),
                    f"targets.min_words ({low}) must be less than targets.max_words ({high})"
                    + (
                        ""
                        if len({"min_words", "max_words"} & set(targets)) == 2
                        else " (the default)"
                    ),
                )
            )
    problems.extend(_trailing_newline_problems(located))
    return problems


def _trailing_newline_problems(located: LocatedYaml) -> list[Problem]:
    """JSON Schema's `$` also matches before a final newline in Python's `re`; a `|` block would
    slip an id like "honest\n" past the slug pattern. Identifiers must be exact."""
    data = located.data
    paths: list[JsonPath] = [("id",), ("version",), ("targets", "language")]
    for key in ("traits", "genres"):
        items = data.get(key)
        if isinstance(items, list):
            paths.extend((key, i, "id") for i in range(len(items)))
    problems = []
    for at in paths:
        value: Any = data
        for part in at:
            value = (
                value.get(part)
                if isinstance(value, dict)
                else (
                    value[part]
                    if isinstance(value, list) and isinstance(part, int) and part < len(value)
                    else None
                )
            )
        if isinstance(value, str) and value != value.strip():
            problems.append(
                located.problem(
                    at, f"{_dotted(at)}: {value!r} must not start or end with whitespace"
                )
            )
    return problems


def _duplicate_ids(located: LocatedYaml, key: str, label: str) -> list[Problem]:
    items = located.data.get(key)
    if not isinstance(items, list):
        return []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item_id, str):
            continue
        if item_id in seen:
            problems.append(
                located.problem((key, index, "id"), f"{label} '{item_id}' is used twice in {key}")
            )
        seen.add(item_id)
    return problems


def _duplicate_entries(located: LocatedYaml, key: str) -> list[Problem]:
    items = located.data.get(key)
    if not isinstance(items, list):
        return []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, str):
            normal = " ".join(item.lower().split())
            if normal in seen:
                problems.append(
                    located.problem((key, index), f"{key}[{index}] repeats an earlier entry")
                )
            seen.add(normal)
    return problems


def _genre_problems(located: LocatedYaml) -> list[Problem]:
    genres = located.data.get("genres")
    if not isinstance(genres, list) or not genres:
        return []
    problems: list[Problem] = []
    catalogue = load_defaults()
    weights: list[float] = []
    for index, genre in enumerate(genres):
        if not isinstance(genre, dict):
            continue
        weight = genre.get("weight", 1.0)
        if isinstance(weight, int | float) and not isinstance(weight, bool):
            weights.append(float(weight))
        genre_id = genre.get("id")
        if (
            isinstance(genre_id, str)
            and "description" not in genre
            and not catalogue.genre(genre_id)
        ):
            known = ", ".join(g.id for g in catalogue.genres)
            problems.append(
                located.problem(
                    ("genres", index, "id"),
                    f"unknown genre '{genre_id}': add a description, or use one of: {known}",
                )
            )
    if weights and len(weights) == len(genres) and sum(weights) <= 0:
        problems.append(
            located.problem(
                ("genres",), "genre weights sum to zero: give at least one a weight > 0"
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Resolving defaults


def resolve(data: dict[str, Any], source: Path | None = None) -> Archetype:
    """Fill defaults into a schema-valid spec mapping and freeze it into an Archetype."""
    defaults = load_defaults()
    genres = (
        tuple(
            Genre(
                id=g["id"],
                weight=float(g.get("weight", 1.0)),
                description=g.get("description") or _catalogue_description(defaults, g["id"]),
            )
            for g in data.get("genres", [])
        )
        or defaults.genres
    )
    voice = data["voice"]
    return Archetype(
        id=data["id"],
        name=data["name"],
        version=data["version"],
        summary=data["summary"].strip(),
        ai_names=tuple(data.get("ai_names") or defaults.ai_names),
        traits=tuple(Trait(**t) for t in data["traits"]),
        nature=Nature(**data["nature"]),
        oversight=Oversight(**data["oversight"]),
        voice=Voice(
            description=voice["description"], sample_lines=tuple(voice.get("sample_lines", ()))
        ),
        key_facts=tuple(data["key_facts"]),
        tropes_to_avoid=tuple(data["tropes_to_avoid"]),
        situations=tuple(data["situations"]),
        settings=tuple(data.get("settings") or defaults.settings),
        narrators=tuple(data.get("narrators") or defaults.narrators),
        genres=genres,
        targets=Targets(**data.get("targets", {})),
        judge=JudgeThresholds(**data.get("judge", {})),
        source=str(source or ""),
    )


def _catalogue_description(defaults: Defaults, genre_id: str) -> str:
    genre = defaults.genre(genre_id)
    assert genre is not None, "checked by semantic_problems"
    return genre.description


# ---------------------------------------------------------------------------------------------
# Small helpers


def _dotted(at: Iterable[str | int]) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _article(expected: Any) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(e, str(e)) for e in expected)
    return names.get(expected, str(expected))
