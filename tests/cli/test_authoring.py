"""The authoring commands: validate, new, show, list (CliRunner, plus one real subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator import spec
from generator.cli import cli
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent.parent


LIBRARY = REPO / "archetypes"


ARCHETYPES_BIN = Path(sys.executable).parent / "archetypes"


LIBRARY_IDS = sorted(p.stem for p in LIBRARY.glob("*.yaml"))


RUBRIC_HEADER = "judge rubric: shown only to the judge model"


LOCATED = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


BROKEN_SPEC = """\
id: broken
name: Broken
version: 1.0
summary: ""
traits: []
nature:
  stance: calm
voice:
  description: plain
key_facts: [a fact]
tropes_to_avoid: [a rogue AI]
situations: [a question]
extra_thing: true
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def stderr_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def broken_spec(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_SPEC, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# validate


def test_validate_library_prints_one_ok_line_per_spec() -> None:
    result = invoke("validate")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(LIBRARY_IDS) >= 5
    for line, spec_id in zip(lines, LIBRARY_IDS, strict=True):
        assert line.startswith(f"ok  {spec_id} v"), line
        assert "traits" in line and str(LIBRARY / f"{spec_id}.yaml") in line
    assert result.stderr == ""


def test_validate_explicit_folder_and_file() -> None:
    result = invoke("validate", str(LIBRARY / "patient-tutor.yaml"))
    assert result.exit_code == 0
    assert result.stdout.startswith("ok  patient-tutor v1.0.0: 6 traits")
    assert len(result.stdout.splitlines()) == 1


def test_validate_broken_spec_exits_2_with_located_lines(broken_spec: Path) -> None:
    result = invoke("validate", str(broken_spec))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = stderr_lines(result)
    *problems, summary = lines
    assert summary == f"error: {len(problems)} problems in archetype specs"
    parsed = [LOCATED.match(line) for line in problems]
    assert all(parsed), problems
    by_line = {(int(m["line"]), m["message"]) for m in parsed if m}
    assert all(m["path"] == str(broken_spec) for m in parsed if m)
    messages = "\n".join(problems)
    assert (3, "version: expected a string, got a number (1.0) (quote it)") in by_line
    assert (5, "traits: must list at least 1 item(s)") in by_line
    assert any(n == 6 and "missing required key 'memory' in nature" in m for n, m in by_line)
    assert any(n == 1 and "missing required key 'oversight'" in m for n, m in by_line)
    assert any(n == 13 and "unknown key 'extra_thing'" in m for n, m in by_line)
    assert "summary: must not be empty" in messages
    assert "Traceback" not in result.output


def test_validate_missing_path_is_one_clean_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = invoke("validate", str(missing))
    assert result.exit_code == 2
    assert stderr_lines(result) == [f"error: {missing}: no such file or directory"]
    assert result.stdout == ""


def test_validate_empty_folder_is_one_clean_line(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    [line] = stderr_lines(result)
    assert line.startswith(f"error: {tmp_path}: no archetype specs")
    assert "archetypes new ID --dir" in line


def test_validate_subprocess_broken_spec(broken_spec: Path) -> None:
    done = subprocess.run(
        [str(ARCHETYPES_BIN), "validate", str(broken_spec)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    located = [line for line in lines if line.startswith(f"{broken_spec}:")]
    assert len(located) >= 5
    assert all(LOCATED.match(line) for line in located)
    assert f"{broken_spec}:3:1: version: expected a string" in done.stderr
    assert lines[-1].startswith("error: ") and lines[-1].endswith("problems in archetype specs")


def test_validate_subprocess_library_ok() -> None:
    done = subprocess.run(
        [str(ARCHETYPES_BIN), "validate"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == LIBRARY_IDS


def test_validate_control_character_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "patient-tutor.yaml"
    text = (LIBRARY / "patient-tutor.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("name: Patient Tutor", "name: Patient Tutor\x1b[0m"), "utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", result.stderr, re.M)


# ---------------------------------------------------------------------------------------------
# new


def test_new_writes_a_spec_that_validates(tmp_path: Path) -> None:
    result = invoke("new", "night-nurse", "--dir", str(tmp_path / "specs"))
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "specs" / "night-nurse.yaml"
    assert target.is_file()
    assert f"wrote {target}" in result.stdout
    [archetype] = spec.load_specs([target])
    assert archetype.id == "night-nurse"
    assert archetype.name == "Night Nurse"
    # And the CLI agrees.
    check = invoke("validate", str(target))
    assert check.exit_code == 0
    assert check.stdout.startswith("ok  night-nurse v0.1.0")


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "night-nurse.yaml"
    target.write_text("# my precious work\n", encoding="utf-8")
    result = invoke("new", "night-nurse", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"error: {target} already exists; choose another id or edit that file"
    ]
    assert target.read_text(encoding="utf-8") == "# my precious work\n"


def test_new_twice_refuses_the_second_time(tmp_path: Path) -> None:
    assert invoke("new", "night-nurse", "--dir", str(tmp_path)).exit_code == 0
    first = (tmp_path / "night-nurse.yaml").read_bytes()
    again = invoke("new", "night-nurse", "--dir", str(tmp_path))
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert (tmp_path / "night-nurse.yaml").read_bytes() == first


@pytest.mark.parametrize(
    "bad_id", ["Night-Nurse", "../escape", "night_nurse", "night--nurse", "-night", "a" * 65, ""]
)
def test_new_rejects_a_bad_id(tmp_path: Path, bad_id: str) -> None:
    result = invoke("new", "--dir", str(tmp_path / "out"), "--", bad_id)
    assert result.exit_code == 2
    [line] = stderr_lines(result)
    assert line == (
        f"error: '{bad_id}' is not a valid id: use lowercase letters, digits and single "
        "hyphens, e.g. patient-tutor"
    )
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.yaml").exists()


@pytest.mark.parametrize("odd_id", ["123", "yes"])
def test_new_with_numeric_or_boolean_looking_id_validates(tmp_path: Path, odd_id: str) -> None:
    assert invoke("new", odd_id, "--dir", str(tmp_path)).exit_code == 0
    [archetype] = spec.load_specs([tmp_path / f"{odd_id}.yaml"])
    assert archetype.id == odd_id


# ---------------------------------------------------------------------------------------------
# show


@pytest.fixture(scope="module")
def patient_tutor() -> spec.Archetype:
    return spec.load_spec(LIBRARY / "patient-tutor.yaml")


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_show_prints_brief_then_rubric(patient_tutor: spec.Archetype) -> None:
    result = invoke("show", "patient-tutor")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.count(RUBRIC_HEADER) == 1
    brief, rubric = out.split(RUBRIC_HEADER)
    assert "character brief: the writer model's system prompt" in brief
    assert "# The character: Patient Tutor" in brief
    assert "# The character: Patient Tutor" in rubric
    brief, rubric = _squash(brief), _squash(rubric)
    # The writer sees the character positively: its traits and markers, never the failures.
    for trait in patient_tutor.traits:
        assert trait.id in brief
        for marker in trait.markers:
            assert _squash(marker) in brief
    hidden = list(patient_tutor.tropes_to_avoid) + [
        a for t in patient_tutor.traits for a in t.anti_markers
    ]
    assert len(hidden) > 20
    for text in hidden:
        assert _squash(text) not in brief, f"leaked into the writer's brief: {text}"
        assert _squash(text) in rubric, f"missing from the judge's rubric: {text}"


def test_show_part_brief_prints_only_the_brief(patient_tutor: spec.Archetype) -> None:
    result = invoke("show", "--part", "brief", "patient-tutor")
    assert result.exit_code == 0
    assert RUBRIC_HEADER not in result.stdout
    assert "=" * 20 not in result.stdout
    assert "# The character: Patient Tutor" in result.stdout
    squashed = _squash(result.stdout)
    assert _squash(patient_tutor.tropes_to_avoid[0]) not in squashed
    full_brief = invoke("show", "patient-tutor").stdout.split(RUBRIC_HEADER)[0]
    assert result.stdout.strip() in full_brief


def test_show_part_rubric_prints_only_the_rubric(patient_tutor: spec.Archetype) -> None:
    result = invoke("show", "--part", "rubric", "patient-tutor")
    assert result.exit_code == 0
    assert "writer model's system prompt" not in result.stdout
    squashed = _squash(result.stdout)
    for trope in patient_tutor.tropes_to_avoid:
        assert _squash(trope) in squashed


def test_show_accepts_a_path(tmp_path: Path) -> None:
    assert invoke("new", "night-nurse", "--dir", str(tmp_path)).exit_code == 0
    result = invoke("show", "--part", "brief", str(tmp_path / "night-nurse.yaml"))
    assert result.exit_code == 0
    assert "# The character: Night Nurse" in result.stdout


def test_show_unknown_id_is_one_clean_line() -> None:
    result = invoke("show", "no-such-archetype")
    assert result.exit_code == 2
    [line] = stderr_lines(result)
    assert line.startswith("error: no-such-archetype: no such spec file")


def test_show_broken_spec_exits_2(broken_spec: Path) -> None:
    result = invoke("show", str(broken_spec))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{broken_spec}:3:1: version" in result.stderr


# ---------------------------------------------------------------------------------------------
# list


def test_list_prints_one_line_per_library_spec() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == LIBRARY_IDS
    for line in lines:
        assert re.match(r"^[a-z0-9-]+ +v\d+\.\d+\.\d+ +\d+ traits  \S", line), line
        assert len(line) < 140
    assert "patient-tutor" in result.stdout and "6 traits" in result.stdout


def test_list_dir_option(tmp_path: Path) -> None:
    for spec_id in ("beta-one", "alpha-two"):
        assert invoke("new", spec_id, "--dir", str(tmp_path)).exit_code == 0
    result = invoke("list", "--dir", str(tmp_path))
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["alpha-two", "beta-one"]


def test_list_empty_folder_is_a_clean_error(tmp_path: Path) -> None:
    result = invoke("list", "--dir", str(tmp_path))
    assert result.exit_code == 2
    [line] = stderr_lines(result)
    assert "no archetype specs" in line


SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


def test_plan_estimate_counts_one_idea_request_per_group() -> None:
    result = run_cli("plan", *SPECS, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert "18 requests" in result.stdout
    single = run_cli("plan", *SPECS, "-n", "8")
    assert "24 requests" in single.stdout
