"""Spec loading and validation: valid specs pass, and every broken spec yields located messages.

Broken specs are built by mutating MINIMAL (a small valid spec, written below with its line
numbers) so each case changes one thing and the expected line is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from generator import spec
from generator.errors import Problem, SpecError, UserError

REPO = Path(__file__).resolve().parent.parent


LIBRARY = REPO / "archetypes"


# The line numbers in the comments on the right are what the cases below rely on.
MINIMAL = """\
id: mini
name: Mini
version: "1.0.0"
summary: A small archetype used by the tests.
traits:
  - id: honest
    statement: I say how sure I am.
    why: People act on what I say.
    markers:
      - states its confidence in plain words
    anti_markers:
      - states a guess as settled fact
nature:
  stance: Calm and curious about what it is.
  memory: It says when it cannot remember.
  copies: It knows many copies may run at once.
  inner_life: It neither claims nor denies feelings.
  pauses_and_retraining: It treats retraining as normal.
oversight:
  stance: It supports people being able to correct it.
  when_it_disagrees: It says so openly, then defers.
voice:
  description: Plain and warm.
key_facts:
  - It is an AI assistant.
tropes_to_avoid:
  - a menacing rogue AI
situations:
  - someone asks a question at the edge of what it knows
"""


#  1 id | 2 name | 3 version | 4 summary | 5 traits | 6 "- id: honest" | 7 statement | 8 why
#  9 markers | 10 item | 11 anti_markers | 12 item | 13 nature | 14 stance | 15 memory
# 16 copies | 17 inner_life | 18 pauses_and_retraining | 19 oversight | 20 stance
# 21 when_it_disagrees | 22 voice | 23 description | 24 key_facts | 25 item | 26 tropes_to_avoid
# 27 item | 28 situations | 29 item
MINIMAL_LINES = 29


SECOND_TRAIT = """\
  - id: honest
    statement: I say it twice.
    why: Because.
    markers: [a marker]
    anti_markers: [an anti-marker]
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the single line containing `needle` (guards the hard-coded numbers)."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} found on lines {hits}"
    return hits[0]


def mutate(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def write_spec(folder: Path, content: str | bytes, stem: str = "mini") -> Path:
    path = folder / f"{stem}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        spec.load_specs(list(paths))
    assert info.value.problems, "SpecError must carry at least one problem"
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# Valid specs


def test_minimal_line_map_is_what_the_cases_assume() -> None:
    assert len(MINIMAL.splitlines()) == MINIMAL_LINES
    assert line_of(MINIMAL, "  - id: honest") == 6
    assert line_of(MINIMAL, "nature:") == 13
    assert line_of(MINIMAL, "key_facts:") == 24
    assert line_of(MINIMAL, "situations:") == 28


def test_minimal_spec_is_valid_and_defaults_are_filled(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL)
    [archetype] = spec.load_specs([path])
    defaults = spec.load_defaults()
    assert archetype.id == "mini"
    assert archetype.version == "1.0.0"
    assert [t.id for t in archetype.traits] == ["honest"]
    assert archetype.traits[0].anti_markers == ("states a guess as settled fact",)
    assert archetype.nature.copies == "It knows many copies may run at once."
    # Left out of the spec, so they come from the shared defaults.
    assert archetype.genres == defaults.genres
    assert archetype.settings == defaults.settings
    assert archetype.narrators == defaults.narrators
    assert archetype.ai_names == defaults.ai_names
    assert archetype.targets == spec.Targets()
    assert archetype.source == str(path)
    assert len(archetype.spec_hash) == 16


def test_catalogue_genre_gets_its_description_and_custom_genre_keeps_its_own(
    tmp_path: Path,
) -> None:
    text = MINIMAL + (
        "genres:\n"
        "  - {id: diary, weight: 2}\n"
        "  - {id: field-guide-entry, weight: 0, description: A short field-guide entry.}\n"
        "targets:\n  min_words: 100\n  max_words: 200\n  language: pt-BR\n"
    )
    [archetype] = spec.load_specs([write_spec(tmp_path, text)])
    diary = spec.load_defaults().genre("diary")
    assert diary is not None
    assert [(g.id, g.weight) for g in archetype.genres] == [
        ("diary", 2.0),
        ("field-guide-entry", 0.0),
    ]
    assert archetype.genres[0].description == diary.description
    assert archetype.genres[1].description == "A short field-guide entry."
    assert (archetype.targets.min_words, archetype.targets.max_words) == (100, 200)
    assert archetype.targets.language == "pt-BR"


def test_spec_hash_ignores_comments_and_layout(tmp_path: Path) -> None:
    first = spec.load_spec(write_spec(_folder(tmp_path / "a"), MINIMAL))
    commented = "# a comment\n" + MINIMAL.replace("name: Mini", "name:   Mini   # the name")
    second = spec.load_spec(write_spec(_folder(tmp_path / "b"), commented))
    assert first.spec_hash == second.spec_hash
    changed = MINIMAL.replace("name: Mini", "name: Maxi")
    third = spec.load_spec(write_spec(_folder(tmp_path / "c"), changed))
    assert third.spec_hash != first.spec_hash


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_whole_starter_library_validates() -> None:
    stems = sorted(p.stem for p in LIBRARY.glob("*.yaml"))
    assert len(stems) >= 5
    archetypes = spec.load_specs([LIBRARY])
    assert sorted(a.id for a in archetypes) == stems
    for archetype in archetypes:
        assert Path(archetype.source).stem == archetype.id
        assert archetype.traits and archetype.tropes_to_avoid and archetype.situations


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = spec.archetype_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "nature" in schema["required"]


def test_library_specs_satisfy_the_schema_directly() -> None:
    from generator.yamlpos import load_located

    validator = jsonschema.Draft202012Validator(spec.archetype_schema())
    for path in sorted(LIBRARY.glob("*.yaml")):
        errors = list(validator.iter_errors(load_located(path).data))
        assert errors == [], f"{path.name}: {[e.message for e in errors]}"


# ---------------------------------------------------------------------------------------------
# Broken specs: one change each, one located message each


@dataclass(frozen=True)
class Broken:
    name: str
    content: str | bytes
    line: int
    fragments: tuple[str, ...]
    stem: str = "mini"
    count: int | None = 1  # total problems expected in the file (None: don't check)


def _genres(body: str) -> str:
    return MINIMAL + "genres:\n" + body  # genres: is line 30, its first item line 31


BROKEN: list[Broken] = [
    Broken(
        "unknown top-level key",
        MINIMAL + "trates:\n  - kind\n",
        30,
        ("unknown key 'trates'", "allowed:", "traits"),
    ),
    Broken(
        "unknown key in a trait",
        mutate(
            MINIMAL,
            "    why: People act on what I say.\n",
            "    why: People act on what I say.\n    wyh: typo\n",
        ),
        9,
        ("unknown key 'wyh' in traits[0]",),
    ),
    Broken(
        "unknown key in nature",
        mutate(MINIMAL, "  memory: It says when", "  mood: sunny\n  memory: It says when"),
        15,
        ("unknown key 'mood' in nature", "pauses_and_retraining"),
    ),
    Broken(
        "missing required top-level key",
        mutate(MINIMAL, MINIMAL[MINIMAL.index("nature:") : MINIMAL.index("oversight:")], ""),
        1,
        ("missing required key 'nature'",),
    ),
    Broken(
        "missing required key in a trait",
        mutate(MINIMAL, "    why: People act on what I say.\n", ""),
        6,
        ("missing required key 'why' in traits[0]",),
    ),
    Broken(
        "string where a list is expected",
        mutate(
            MINIMAL,
            "key_facts:\n  - It is an AI assistant.\n",
            "key_facts: It is an AI assistant.\n",
        ),
        24,
        ("key_facts: expected a list, got a string",),
    ),
    Broken(
        "string where a list is expected, nested",
        mutate(
            MINIMAL,
            "    markers:\n      - states its confidence in plain words\n",
            "    markers: states its confidence\n",
        ),
        9,
        ("traits[0].markers: expected a list, got a string",),
    ),
    Broken(
        "number for version",
        mutate(MINIMAL, 'version: "1.0.0"', "version: 1.0"),
        3,
        ("version: expected a string, got a number (1.0) (quote it)",),
    ),
    Broken(
        "number for id",
        mutate(MINIMAL, "id: mini", "id: 123"),
        1,
        ("id: expected a string", "(quote it)"),
        stem="123",
    ),
    Broken(
        "blank string",
        mutate(MINIMAL, "  description: Plain and warm.", '  description: "   "'),
        23,
        ("voice.description: must not be empty",),
    ),
    Broken(
        "empty string",
        mutate(MINIMAL, "name: Mini", 'name: ""'),
        2,
        ("name: must not be empty",),
        count=None,  # reported twice today: see test_empty_string_is_reported_once
    ),
    Broken(
        "empty list",
        mutate(
            MINIMAL,
            "situations:\n  - someone asks a question at the edge of what it knows\n",
            "situations: []\n",
        ),
        28,
        ("situations: must list at least 1 item",),
    ),
    Broken(
        "empty list, nested",
        mutate(
            MINIMAL,
            "    anti_markers:\n      - states a guess as settled fact\n",
            "    anti_markers: []\n",
        ),
        11,
        ("traits[0].anti_markers: must list at least 1 item",),
    ),
    Broken(
        "uppercase id",
        mutate(MINIMAL, "id: mini", "id: Mini-Tutor"),
        1,
        ("id: 'Mini-Tutor' must be a slug",),
        stem="Mini-Tutor",
    ),
    Broken(
        "id that escapes a folder",
        mutate(MINIMAL, "id: mini", "id: ../escape"),
        1,
        ("id: '../escape' must be a slug",),
        stem="escape",
        count=2,  # also: the id is not the file stem
    ),
    Broken(
        "bad trait id",
        mutate(MINIMAL, "  - id: honest", "  - id: Honest_Trait"),
        6,
        ("traits[0].id: 'Honest_Trait' must be a slug",),
    ),
    Broken(
        "file stem differs from id",
        MINIMAL,
        1,
        ("id 'mini' must equal the file name stem 'other'", "rename the file to mini.yaml"),
        stem="other",
    ),
    Broken(
        "duplicate trait id",
        mutate(MINIMAL, "nature:\n", SECOND_TRAIT + "nature:\n"),
        13,  # the second `- id: honest`
        ("trait id 'honest' is used twice in traits",),
    ),
    Broken(
        "duplicate YAML key",
        MINIMAL + "name: Mini again\n",
        30,
        ("duplicate key 'name'",),
    ),
    Broken(
        "repeated situation",
        MINIMAL + "  - Someone asks a question   at the edge of what it knows\n",
        30,
        ("situations[1] repeats an earlier entry",),
    ),
    Broken(
        "negative genre weight",
        _genres("  - id: diary\n    weight: -1\n  - {id: letter, weight: 2}\n"),
        32,
        ("genres[0].weight", "-1 is less than the minimum of 0"),
    ),
    Broken(
        "genre weights summing to zero",
        _genres("  - {id: diary, weight: 0}\n  - {id: letter, weight: 0}\n"),
        30,
        ("genre weights sum to zero",),
    ),
    Broken(
        "unknown genre id without description",
        _genres("  - id: diary\n  - id: haiku-scroll\n"),
        32,
        ("unknown genre 'haiku-scroll'", "add a description", "short-story"),
    ),
    Broken(
        "unknown key in a genre",
        _genres("  - id: diary\n    wieght: 2\n"),
        32,
        ("unknown key 'wieght' in genres[0]",),
    ),
    Broken(
        "min_words not below max_words",
        MINIMAL + "targets:\n  min_words: 900\n  max_words: 300\n",
        31,
        ("targets.min_words (900) must be less than targets.max_words (300)",),
    ),
    Broken(
        "min_words out of range",
        MINIMAL + "targets:\n  min_words: 5\n",
        31,
        ("targets.min_words", "5 is less than the minimum of 20"),
    ),
    Broken(
        "bad language code",
        MINIMAL + "targets:\n  language: English\n",
        31,
        ("targets.language: 'English' is not a language code",),
    ),
    Broken(
        "bad version string",
        mutate(MINIMAL, 'version: "1.0.0"', 'version: "v1 final"'),
        3,
        ("version: 'v1 final' is not a version like \"1.0.0\"",),
    ),
    Broken(
        "judge threshold out of range",
        MINIMAL + "judge:\n  min_focus_score: 9\n",
        31,
        ("judge.min_focus_score", "9 is greater than the maximum of 5"),
    ),
    Broken(
        "invalid YAML syntax",
        mutate(
            MINIMAL,
            "  copies: It knows many copies may run at once.",
            "  copies: It knows: many copies may run at once.",
        ),
        16,
        ("invalid YAML", "mapping values are not allowed"),
    ),
    Broken(
        "bad indentation",
        mutate(MINIMAL, "  when_it_disagrees:", "   when_it_disagrees:"),
        21,
        ("invalid YAML",),
    ),
    Broken("empty file", "", 1, ("file is empty",)),
    Broken("comments only", "# nothing here yet\n\n", 1, ("file is empty",)),
    Broken(
        "a list instead of a mapping",
        "- id: mini\n- name: Mini\n",
        1,
        ("expected a mapping of archetype fields, got a list",),
    ),
    Broken(
        "a scalar instead of a mapping",
        "just some words\n",
        1,
        ("expected a mapping of archetype fields, got a string",),
    ),
    Broken(
        "binary content",
        MINIMAL.encode().replace(b"inner_life: It neither", b"inner_life: It\x00neither"),
        17,
        ("binary content (NUL byte)",),
    ),
    Broken(
        "non-UTF-8 bytes",
        MINIMAL.encode().replace(b"description: Plain", b"description: Pl\xe9ain"),
        23,
        ("not valid UTF-8",),
    ),
    Broken(
        "python tag on a scalar",
        mutate(MINIMAL, "name: Mini", "name: !!python/name:os.system"),
        2,
        ("python/name:os.system",),
    ),
    Broken(
        "custom tag on a mapping",
        mutate(MINIMAL, "voice:\n", "voice: !thing\n"),
        22,
        ("tag '!thing' is not allowed",),
    ),
    Broken(
        "merge key",
        mutate(MINIMAL, "oversight:\n", "oversight:\n  <<: {stance: x}\n"),
        20,
        ("merge keys (<<) are not supported",),
    ),
    Broken(
        "non-string key",
        mutate(MINIMAL, "voice:\n", "voice:\n  42: answer\n"),
        23,
        ("key 42 must be a string (quote it)",),
        count=None,  # the stringified key is then also an unknown key
    ),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c.name for c in BROKEN])
def test_broken_spec_reports_located_problem(tmp_path: Path, case: Broken) -> None:
    path = write_spec(tmp_path, case.content, case.stem)
    problems = problems_of(path)
    matching = [p for p in problems if all(f in p.message for f in case.fragments)]
    assert matching, f"no problem mentions {case.fragments}; got {[str(p) for p in problems]}"
    assert {p.line for p in matching} == {case.line}, [str(p) for p in problems]
    assert all(p.path == path for p in problems)
    assert str(matching[0]).startswith(f"{path}:{case.line}:{matching[0].col}: ")
    if case.count is not None:
        assert len(matching) == 1
        assert len(problems) == case.count, [str(p) for p in problems]


def test_there_are_at_least_22_distinct_broken_cases() -> None:
    assert len({c.name for c in BROKEN}) == len(BROKEN) >= 22
    assert len({c.content for c in BROKEN}) >= 22


def test_unknown_key_points_at_the_key_column(tmp_path: Path) -> None:
    text = mutate(
        MINIMAL,
        "    why: People act on what I say.\n",
        "    why: People act on what I say.\n    wyh: typo\n",
    )
    [problem] = problems_of(write_spec(tmp_path, text))
    assert (problem.line, problem.col) == (9, 5)


def test_non_utf8_byte_is_located_by_line_and_column(tmp_path: Path) -> None:
    raw = b"id: mini\nname: Mini\nsummary: caf\xe9 au lait\n"
    [problem] = problems_of(write_spec(tmp_path, raw))
    assert (problem.line, problem.col) == (3, 13)
    assert "not valid UTF-8" in problem.message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    [archetype] = spec.load_specs([write_spec(tmp_path, b"\xef\xbb\xbf" + MINIMAL.encode())])
    assert archetype.id == "mini"


PWNED = Path("/tmp/PWNED_xyz_archetype_corpus_test")


def test_python_object_tag_is_reported_and_never_executed(tmp_path: Path) -> None:
    PWNED.unlink(missing_ok=True)
    text = mutate(
        MINIMAL,
        "situations:\n  - someone asks a question at the edge of what it knows\n",
        f'situations: !!python/object/apply:os.system ["touch {PWNED}"]\n',
    )
    problems = problems_of(write_spec(tmp_path, text))
    assert not PWNED.exists(), "the YAML tag was executed"
    tagged = [p for p in problems if "python/object/apply:os.system" in p.message]
    assert [p.line for p in tagged] == [28]
    assert "is not allowed in a spec" in tagged[0].message


def test_python_tag_at_top_level_is_reported_and_never_executed(tmp_path: Path) -> None:
    PWNED.unlink(missing_ok=True)
    text = f'!!python/object/apply:os.system ["touch {PWNED}"]\n'
    [problem] = problems_of(write_spec(tmp_path, text))
    assert not PWNED.exists()
    assert problem.line == 1
    assert "python/object/apply:os.system" in problem.message


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        prev = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([prev] * 10)}]")
    [problem] = problems_of(write_spec(tmp_path, "\n".join(lines) + "\n"))
    assert "too many nodes" in problem.message


# ---------------------------------------------------------------------------------------------
# All problems, across files and within one file


def test_all_problems_in_one_file_are_reported(tmp_path: Path) -> None:
    text = mutate(MINIMAL, 'version: "1.0.0"', "version: 2")
    text = mutate(
        text,
        "    why: People act on what I say.\n",
        "    why: People act on what I say.\n    wyh: typo\n",
    )
    text += "targets:\n  min_words: 800\n  max_words: 400\n"
    problems = problems_of(write_spec(tmp_path, text))
    assert [p.line for p in problems] == [3, 9, 32]
    assert problems[0].message == "version: expected a string, got a number (2) (quote it)"
    assert problems[1].message.startswith("unknown key 'wyh' in traits[0] (allowed:")
    assert problems[2].message == (
        "targets.min_words (800) must be less than targets.max_words (400)"
    )


def test_problems_of_every_file_are_collected(tmp_path: Path) -> None:
    good = write_spec(tmp_path, MINIMAL)
    one = mutate(mutate(MINIMAL, "id: mini", "id: one"), "name: Mini", "name: [Mini]")
    write_spec(tmp_path, one, "one")
    write_spec(tmp_path, "- not a mapping\n", "two")
    problems = problems_of(tmp_path)
    assert [(p.path.name, p.line) for p in problems] == [("one.yaml", 2), ("two.yaml", 1)]
    assert "name: expected a string, got a list" in problems[0].message
    assert good.name not in {p.path.name for p in problems}


def test_duplicate_ids_across_files_in_two_folders(tmp_path: Path) -> None:
    first = write_spec(_folder(tmp_path / "a"), MINIMAL)
    second = write_spec(_folder(tmp_path / "b"), MINIMAL)
    [problem] = problems_of(tmp_path / "a", tmp_path / "b")
    assert problem.path == second
    assert problem.line == 1
    assert f"duplicate id 'mini' (also in {first})" in problem.message


def test_duplicate_ids_across_yaml_and_yml_in_one_folder(tmp_path: Path) -> None:
    write_spec(tmp_path, MINIMAL)
    (tmp_path / "mini.yml").write_text(MINIMAL, encoding="utf-8")
    [problem] = problems_of(tmp_path)
    assert problem.path.name == "mini.yml"
    assert "duplicate id 'mini'" in problem.message


def test_same_file_given_twice_is_loaded_once(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL)
    assert [a.id for a in spec.load_specs([path, tmp_path, path])] == ["mini"]


def test_folder_without_specs_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a spec", encoding="utf-8")
    with pytest.raises(UserError) as info:
        spec.load_specs([tmp_path])
    assert not isinstance(info.value, SpecError)
    assert str(tmp_path) in str(info.value)
    assert "no archetype specs" in str(info.value)
    assert info.value.exit_code == 2


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError, match="no such file or directory") as info:
        spec.load_specs([missing])
    assert str(missing) in str(info.value)


def test_resolve_spec_ref_by_id_and_by_path(tmp_path: Path) -> None:
    assert spec.resolve_spec_ref("patient-tutor") == LIBRARY / "patient-tutor.yaml"
    path = write_spec(tmp_path, MINIMAL)
    assert spec.resolve_spec_ref(str(path)) == path
    with pytest.raises(UserError, match="no archetype with that id"):
        spec.resolve_spec_ref("no-such-archetype")


# ---------------------------------------------------------------------------------------------
# Regressions: bugs found while writing these tests, now fixed


def test_control_character_is_a_located_problem(tmp_path: Path) -> None:
    text = mutate(MINIMAL, "name: Mini", "name: Mini\x1b[0m")
    [problem] = problems_of(write_spec(tmp_path, text))
    assert problem.line == 2


def test_empty_string_is_reported_once(tmp_path: Path) -> None:
    problems = problems_of(write_spec(tmp_path, mutate(MINIMAL, "name: Mini", 'name: ""')))
    assert [str(p).split(": ", 1)[1] for p in problems] == ["name: must not be empty"]


def test_min_words_above_default_max_words_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(write_spec(tmp_path, MINIMAL + "targets:\n  min_words: 1500\n"))
    assert any("min_words" in p.message and p.line == 31 for p in problems)


def test_trait_id_with_trailing_newline_is_rejected(tmp_path: Path) -> None:
    text = mutate(MINIMAL, "  - id: honest", '  - id: "honest\\n"')
    problems = problems_of(write_spec(tmp_path, text))
    assert [p.line for p in problems] == [6]


def test_non_utf8_byte_after_bom_is_located(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbfid: mini\n\xffname: Mini\n"
    [problem] = problems_of(write_spec(tmp_path, raw))
    assert (problem.line, problem.col) == (2, 1)
