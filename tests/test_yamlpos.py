"""Bad input for the located YAML reader (generator/yamlpos.py) and everything behind it: random
YAML and random mutations of valid specs thrown at `validate` and `generate`.

The contract: never a traceback, exit code 0 or 2 (never 1, the "internal error" code), and a
broken spec stops `generate` before any model call. Most examples run in-process through click's
CliRunner for speed; a handful go through the installed console script as a user would run it.

ARCHETYPES_FUZZ_EXAMPLES=2000 ARCHETYPES_FUZZ_RANDOM=1 pytest tests/test_yamlpos.py explores further
(by default the examples are derandomized so CI is repeatable).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import cli
from tests.conftest import ARCHETYPES_BIN, LIBRARY, REPO
from tests.support.openai_stub import OpenAIStub, StubConfig

BASE_SPEC = LIBRARY / "patient-tutor.yaml"


BASE_TEXT = BASE_SPEC.read_text(encoding="utf-8")


BASE_DATA: dict[str, Any] = yaml.safe_load(BASE_TEXT)


FILE_NAME = BASE_SPEC.name  # the id must match the file stem, so mutants can still be valid


# `plan` counts tokens in-process here; bpe_openai (generator/tokens.py) still loads its data
# with importlib.resources.open_binary, deprecated since Python 3.11.
pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")


FUZZ = settings(
    max_examples=int(os.environ.get("ARCHETYPES_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    derandomize=not os.environ.get("ARCHETYPES_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------------------------
# Running the CLI


@pytest.fixture(scope="module")
def module_stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub(StubConfig())
    server.start()
    yield server
    server.stop()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"ARCHETYPES_DEBUG": None})


def assert_clean(result: Result, what: str) -> None:
    assert "Traceback" not in result.output, f"{what}: traceback\n{result.output}"
    assert result.exit_code in (0, 2), f"{what}: exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{what}: {result.exception!r}"
    )


def check_validate_and_generate(content: bytes, stub: OpenAIStub) -> None:
    """`validate` exits 0 or 2 cleanly. When it says 2, `generate` does too, before any model
    call; when it says 0, `plan` and a one-document `generate` against the stub run cleanly."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        spec = folder / FILE_NAME
        spec.write_bytes(content)
        checked = invoke("validate", str(spec))
        assert_clean(checked, "validate")
        calls = len(stub.log)
        out = folder / "run"
        generate = (
            "generate", str(spec), "--out", str(out), "-n", "1", "--base-url", stub.base_url,
            "--model", "stub-model", "--no-progress",
        )  # fmt: skip
        if checked.exit_code == 0:
            if _moderate_numbers(content):  # huge ones: see test_extreme_numbers_plan_cleanly
                assert_clean(invoke("plan", str(spec), "-n", "3"), "plan")
                assert_clean(invoke(*generate), "generate (valid spec)")
            return
        generated = invoke(*generate)
        assert_clean(generated, "generate")
        assert generated.exit_code == 2, generated.output
        assert len(stub.log) == calls, "a broken spec must stop generate before any model call"
        assert not (out / "records.jsonl").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _moderate_numbers(content: bytes) -> bool:
    """Every number in the document is finite and at most a million in size."""

    def ok(node: Any) -> bool:
        if isinstance(node, dict):
            return all(ok(k) and ok(v) for k, v in node.items())
        if isinstance(node, list):
            return all(ok(v) for v in node)
        if isinstance(node, bool) or not isinstance(node, int | float):
            return True
        return abs(node) <= 1e6  # False for nan and inf too

    return ok(yaml.safe_load(content))


# ---------------------------------------------------------------------------------------------
# Strategies

# Characters that mean something to YAML, plus letters and whitespace, so random text often
# parses into something spec-shaped instead of always failing at the first byte.
YAML_ALPHABET = st.sampled_from([*"-:[]{}&*!|>'\"%@`#,?~=<\\", "\n", "\n", " ", "\t", "\r"]) | (
    st.characters(codec="utf-8")
)


SPEC_WORDS = ["id", "traits", "name", "version", "null", "true", "1e9", "<<", "&a", "*a", "!!str"]


YAML_WORDS = st.sampled_from([*SPEC_WORDS, "\n  ", *BASE_DATA])


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.dates(),
    st.binary(max_size=20),
)


values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.integers(), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def random_yaml(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "yamlish", "tokens", "dumped", "bytes"]))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "yamlish":
        return draw(st.text(YAML_ALPHABET, max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "tokens":
        parts = draw(st.lists(YAML_WORDS | st.text(YAML_ALPHABET, max_size=8), max_size=60))
        return "".join(parts).encode("utf-8", "surrogatepass")
    if kind == "dumped":
        data = draw(values)
        flow = draw(st.sampled_from([None, True, False]))
        return yaml.dump(data, default_flow_style=flow, allow_unicode=draw(st.booleans())).encode()
    return draw(st.binary(max_size=300))


def _paths(node: Any, at: tuple = ()) -> Iterator[tuple]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*at, index))


def _get(node: Any, at: tuple) -> Any:
    for part in at:
        node = node[part]
    return node


def _set(root: Any, at: tuple, value: Any) -> Any:
    if not at:
        return value
    _get(root, at[:-1])[at[-1]] = value
    return root


def _delete(root: Any, at: tuple) -> Any:
    if not at:
        return None
    parent = _get(root, at[:-1])
    del parent[at[-1]]
    return root


huge_numbers = st.one_of(
    st.integers(min_value=20, max_value=4000).map(lambda k: 10**k),
    st.integers(min_value=20, max_value=4000).map(lambda k: -(10**k)),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 5e-324, 2**63, -1]),
)


weird_text = st.one_of(
    st.text(max_size=60),
    st.text(
        st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x85\u2028\u2029\ufeff"),
        max_size=10,
    ),
    st.sampled_from(
        ["", " ", "[Name]", "~", "null", "&a", "*a", "!!python/object:os.system", "a" * 5000]
    ),
)


@st.composite
def mutated_spec(draw: st.DrawFn) -> bytes:
    data = copy.deepcopy(BASE_DATA)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(data))
        at = draw(st.sampled_from(paths))
        op = draw(
            st.sampled_from(
                ["delete", "retype", "unknown-key", "unicode", "nest", "huge", "alias", "date"]
            )
        )
        try:
            current = _get(data, at)
        except (KeyError, IndexError, TypeError):
            continue
        if op == "delete":
            data = _delete(data, at)
        elif op == "retype":
            data = _set(data, at, draw(values))
        elif op == "unknown-key":
            target = current if isinstance(current, dict) else data
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=20))] = draw(values)
        elif op == "unicode":
            data = _set(data, at, draw(weird_text))
        elif op == "nest":
            depth = draw(st.integers(min_value=1, max_value=80))
            wrapped = current
            for _ in range(depth):
                wrapped = [wrapped] if draw(st.booleans()) else {"k": wrapped}
            data = _set(data, at, wrapped)
        elif op == "huge":
            data = _set(data, at, draw(huge_numbers))
        elif op == "alias":
            # The same object at two places: yaml.dump writes an anchor and an alias.
            other = draw(st.sampled_from(paths))
            if at and other and not _is_prefix(at, other) and not _is_prefix(other, at):
                with contextlib.suppress(KeyError, IndexError, TypeError):
                    data = _set(data, other, current)
        elif op == "date":
            data = _set(data, at, datetime.date(2024, 2, 29))
    flow = draw(st.sampled_from([None, False, True]))
    text = yaml.dump(
        data, default_flow_style=flow, allow_unicode=draw(st.booleans()), sort_keys=False
    )
    raw = text.encode("utf-8", "surrogatepass")
    return draw(text_mutation(raw))


ODD = ["{{ 7*7 }}", "{% raw %}", "</document>", "<|im_end|>", "\u202eevil", "\x1b[2J", "a\x00b"]


ODD += ["\ud7ff\ue000", "Ω≈ç√∫", "💥🤖", "line\nbreak", '"quoted"', "%s%n", "[Name]"]


@st.composite
def weird_strings_spec(draw: st.DrawFn) -> bytes:
    """A valid spec whose prose fields hold odd but legal text (emoji, RTL marks, escapes,
    control characters, markup): mostly still valid, so it flows on into plan and generate."""
    data = copy.deepcopy(BASE_DATA)
    prose = [
        at
        for at in _paths(data)
        if isinstance(_get(data, at), str) and at and at[-1] not in ("id", "version", "language")
    ]
    for at in draw(st.lists(st.sampled_from(prose), min_size=1, max_size=6, unique=True)):
        text = draw(st.text(min_size=1, max_size=80).filter(str.strip) | st.sampled_from(ODD))
        data = _set(data, at, _get(data, at) + " " + text)
    text = yaml.dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)
    return text.encode("utf-8", "surrogatepass")


def _is_prefix(a: tuple, b: tuple) -> bool:
    return b[: len(a)] == a


@st.composite
def text_mutation(draw: st.DrawFn, raw: bytes) -> bytes:
    """Maybe damage the serialised text: raw control characters, bad bytes, cuts, duplicates."""
    op = draw(st.sampled_from(["none", "none", "insert", "cut", "duplicate-line", "bytes"]))
    if op == "none" or not raw:
        return raw
    at = draw(st.integers(min_value=0, max_value=len(raw)))
    if op == "insert":
        snippet = draw(
            st.sampled_from(
                [
                    "\x00",
                    "\x07",
                    "\x1b[31m",
                    "\t",
                    "\r",
                    "\ufeff",
                    "\u2028",
                    "&a ",
                    "*a",
                    ": ",
                    "- ",
                    "<<: *a\n",
                ]
            )
            | st.text(max_size=5)
        )
        return raw[:at] + snippet.encode("utf-8", "surrogatepass") + raw[at:]
    if op == "cut":
        return raw[:at]
    if op == "duplicate-line":
        lines = raw.splitlines(keepends=True)
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        return b"".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]


# ---------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(content=random_yaml())
def test_random_yaml_never_crashes(content: bytes, module_stub: OpenAIStub) -> None:
    check_validate_and_generate(content, module_stub)


@FUZZ
@given(content=mutated_spec())
def test_mutated_specs_never_crash(content: bytes, module_stub: OpenAIStub) -> None:
    check_validate_and_generate(content, module_stub)


@settings(FUZZ, max_examples=max(FUZZ.max_examples // 5, 10))
@given(content=weird_strings_spec())
def test_odd_text_in_valid_specs_flows_through(content: bytes, module_stub: OpenAIStub) -> None:
    check_validate_and_generate(content, module_stub)


def test_the_unmutated_spec_is_valid() -> None:
    """The mutations start from a valid spec (else every example would fail for one reason)."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        (folder / FILE_NAME).write_text(yaml.dump(BASE_DATA, sort_keys=False), encoding="utf-8")
        result = invoke("validate", str(folder / FILE_NAME))
        assert result.exit_code == 0, result.output
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Known crashes: each is one short file.

DEEP = 1000


KNOWN_CRASHES = {
    "deep-flow-nesting": "[" * DEEP + "]" * DEEP + "\n",
    "deep-block-nesting": "".join(f"{' ' * i}k{i}:\n" for i in range(DEEP)) + " " * DEEP + "x\n",
    "recursive-alias-list": f"id: {BASE_SPEC.stem}\nsituations: &s [a, *s]\n",
    "recursive-alias-map": f"id: {BASE_SPEC.stem}\nvoice: &v {{description: *v}}\n",
}


@pytest.mark.parametrize("name", sorted(KNOWN_CRASHES))
def test_pathological_yaml_is_a_located_problem(name: str, tmp_path: Path) -> None:
    spec = tmp_path / FILE_NAME
    spec.write_text(KNOWN_CRASHES[name], encoding="utf-8")
    result = invoke("validate", str(spec))
    assert_clean(result, name)
    assert result.exit_code == 2


def _with_genre_weights(weights: list[str]) -> str:
    lines = BASE_TEXT.splitlines()
    genres = [f"  - id: {g}\n    weight: {w}" for g, w in zip(GENRE_IDS, weights, strict=False)]
    body = "\n".join(line for line in lines if not line.startswith("genres:"))
    return body + "\ngenres:\n" + "\n".join(genres) + "\n"


GENRE_IDS = ["short-story", "diary", "chat-transcript"]


EXTREME_NUMBERS = {
    "genre-weights-overflow-their-sum": _with_genre_weights(["1.0e+308", "1.0e+308", "1"]),
    "genre-weight-infinite": _with_genre_weights([".inf", "1", "1"]),
    "documents-beyond-float": BASE_TEXT.replace("documents: 400", "documents: 1" + "0" * 400),
}


@pytest.mark.parametrize("name", sorted(EXTREME_NUMBERS))
def test_extreme_numbers_plan_cleanly(name: str, tmp_path: Path) -> None:
    spec = tmp_path / FILE_NAME
    spec.write_text(EXTREME_NUMBERS[name], encoding="utf-8")
    checked = invoke("validate", str(spec))
    assert_clean(checked, "validate")
    if checked.exit_code == 0:
        assert_clean(invoke("plan", str(spec), "-n", "3"), "plan")


def test_integer_with_5000_digits_is_a_located_problem(tmp_path: Path) -> None:
    spec = tmp_path / FILE_NAME
    spec.write_text(BASE_TEXT.replace("documents: 400", "documents: 1" + "0" * 5000), "utf-8")
    result = invoke("validate", str(spec))
    assert_clean(result, "validate")
    assert result.exit_code == 2


# ---------------------------------------------------------------------------------------------
# A few through the installed console script, exactly as a user would run them

NASTY_FILES = {
    "empty": b"",
    "nul-byte": b"id: patient-tutor\x00\n",
    "invalid-utf8": b"id: patient-tutor\nname: \xff\xfe\n",
    "bom-then-valid": b"\xef\xbb\xbf" + BASE_TEXT.encode(),
    "control-character": BASE_TEXT.replace("name:", "name:\x1b", 1).encode(),
    "python-tag": b"id: !!python/object/apply:os.system [echo pwned]\n",
    "alias-bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        b"g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    ),
    "huge-numbers": BASE_TEXT.replace("documents: 400", "documents: 9" + "9" * 4000, 1)
    .replace("min_words: 250", "min_words: -1.0e+400", 1)
    .encode(),
    "unknown-key": BASE_TEXT.encode() + b"\nwhatever: 1\n",
    "merge-key": BASE_TEXT.encode() + b"\nx: &m {a: 1}\ny:\n  <<: *m\n",
    "list-at-top": b"- id: patient-tutor\n",
    "tabs": b"id: patient-tutor\ntraits:\n\t- id: x\n",
}


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ARCHETYPES_DEBUG")}
    return subprocess.run(
        [str(ARCHETYPES_BIN), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=REPO,
    )


@pytest.mark.parametrize("name", ["nul-byte", "alias-bomb", "huge-numbers", "python-tag"])
def test_console_script_validate_and_generate_refuse_cleanly(
    name: str, tmp_path: Path, module_stub: OpenAIStub
) -> None:
    spec = tmp_path / FILE_NAME
    spec.write_bytes(NASTY_FILES[name])
    checked = _console("validate", str(spec))
    assert checked.returncode == 2, checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr
    calls = len(module_stub.log)
    generated = _console(
        "generate", str(spec), "--out", str(tmp_path / "run"), "-n", "1",
        "--base-url", module_stub.base_url, "--no-progress",
    )  # fmt: skip
    assert generated.returncode == 2, generated.stderr
    assert "Traceback" not in generated.stdout + generated.stderr
    assert len(module_stub.log) == calls, "no model call before the spec is known to be good"


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_nasty_files_in_process(name: str, tmp_path: Path, module_stub: OpenAIStub) -> None:
    check_validate_and_generate(NASTY_FILES[name], module_stub)
