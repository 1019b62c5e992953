"""`archetypes generate` against a real OpenAI-compatible server on 127.0.0.1 (the stub): the run
(generator/run.py) end to end, its reliability under faults, kills and full disks, and several
answers per request (--samples-per-request)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest

from generator.rundir import RunDir
from tests.conftest import ARCHETYPES_BIN, LIBRARY, REPO, read_jsonl, run_cli
from tests.support.openai_stub import OpenAIStub, StubConfig, text_hash
from tests.support.runs import generate_against, idea_bodies

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


DATA_FILES = ("records.jsonl", "rejects.jsonl", "cache.jsonl", "manifest.json")


KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN")


# How the client names each fault the stub injects ("truncated" is not a transport fault: the
# answer arrives, cut short, and the worker asks again with more room).
CLIENT_KIND = {
    "429": "429",
    "429-limit": "429",
    "500": "500",
    "503": "503",
    "reset": "connection",
    "timeout": "timeout",
    "malformed": "malformed",
    "empty": "empty",
}


# ---------------------------------------------------------------------------------------------
# Helpers


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*KEY_VARIABLES, "ARCHETYPES_DEBUG")}
    env.update(extra)
    return env


def generate_args(out: Path, base_url: str, n: int, *extra: str) -> list[str]:
    return [
        str(ARCHETYPES_BIN),
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        str(n),
        "--base-url",
        base_url,
        "--no-progress",
        *extra,
    ]


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env or base_env(),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=REPO,
    )


def record_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / "record.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def parse_jsonl(path: Path, allow_partial_tail: bool = False) -> list[dict]:
    """Every line of a JSONL file, strictly. With `allow_partial_tail`, a last line without its
    newline (a write cut short by SIGKILL) is ignored: the next open trims it."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail and not allow_partial_tail:
        raise AssertionError(f"{path} ends with a partial line: {tail[:80]!r}")
    return [json.loads(line) for line in lines]


def assert_run_files_parse(out: Path, allow_partial_tail: bool = False) -> dict:
    for name in ("records.jsonl", "rejects.jsonl", "cache.jsonl"):
        parse_jsonl(out / name, allow_partial_tail)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(manifest, dict)
    return manifest


def digests(out: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((out / name).read_bytes()).hexdigest()
        for name in DATA_FILES
        if (out / name).exists()
    }


PROGRESS_LINE = re.compile(r"^generate: \d+/\d+ documents, ")


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the run said on stderr besides its progress lines."""
    return [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not PROGRESS_LINE.match(line)
    ]


@pytest.fixture(scope="module")
def module_stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub(StubConfig())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished(module_stub: OpenAIStub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of 3 documents, made once; tests work on copies of it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    result = run(generate_args(out, module_stub.base_url, 3, "--concurrency", "4"))
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 3
    return out


def copy_of(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


# ---------------------------------------------------------------------------------------------
# Kill and resume


def _paid_bodies(out: Path, stub: OpenAIStub) -> set[str]:
    """Request bodies whose answer is in cache.jsonl now (complete lines only: a partial tail is
    trimmed on the next open, so that answer counts as lost, not as paid)."""
    cached = {
        text_hash(line["completion"]["text"]) for line in parse_jsonl(out / "cache.jsonl", True)
    }
    return {e.body_hash for e in stub.log if e.response_hash and e.response_hash in cached}


def _answer_identity_is_unique(stub: OpenAIStub) -> None:
    """The proof maps a cached answer back to the request body that produced it; that is sound
    only if no two different bodies were ever answered with the same text."""
    bodies_by_answer: dict[str, set[str]] = {}
    for e in stub.log:
        if e.response_hash:
            bodies_by_answer.setdefault(e.response_hash, set()).add(e.body_hash)
    ambiguous = {h: b for h, b in bodies_by_answer.items() if len(b) > 1}
    assert not ambiguous, "two different requests got the same answer: the proof is ambiguous"


def test_sigkill_at_random_points_then_resume(make_stub, tmp_path: Path) -> None:
    rng = random.Random(0xA7C4)
    server = make_stub(latency=0.15)
    out = tmp_path / "run"
    n, concurrency, kills = 14, 6, 3
    args = generate_args(out, server.base_url, n, "--concurrency", str(concurrency))
    killed = 0
    for attempt in range(kills + 1):
        paid_before = _paid_bodies(out, server)
        log_start = len(server.log)
        lines_at_start = complete_lines(out / "cache.jsonl")
        process = subprocess.Popen(
            args,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        if attempt < kills:
            # A random number of newly paid answers, then a random moment (maybe mid-write).
            wanted = lines_at_start + rng.randint(2, 9)
            deadline = time.monotonic() + 90
            while complete_lines(out / "cache.jsonl") < wanted and process.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == -signal.SIGKILL, stderr
            killed += 1
            assert_run_files_parse(out, allow_partial_tail=True)
        else:
            _, stderr = process.communicate(timeout=180)
            assert process.returncode == 0, stderr
            assert "Traceback" not in stderr

        repaid = [e for e in server.log[log_start:] if e.body_hash in paid_before]
        assert repaid == [], "a request whose answer was already in cache.jsonl was sent again"

    assert killed == kills
    _answer_identity_is_unique(server)
    # Paying twice is bounded by what was in flight at the kills: one call per worker.
    answered = Counter(e.body_hash for e in server.log if e.response_hash)
    twice = sum(count - 1 for count in answered.values() if count > 1)
    assert twice <= kills * concurrency, (twice, kills, concurrency)

    manifest = assert_run_files_parse(out)
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == n
    ids = [r["id"] for r in records]
    assert len(set(ids)) == n, "no duplicate documents"
    validator = record_validator()
    for record in records:
        assert not list(validator.iter_errors(record))
    assert not set(ids) & {r["task_id"] for r in read_jsonl(out / "rejects.jsonl")}
    assert manifest["status"] == "complete"
    assert manifest["counts"]["accepted"] == n
    # Every cache line is one paid answer, and each was paid once.
    keys = [line["key"] for line in read_jsonl(out / "cache.jsonl")]
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------------------------------------
# Faults


FAULT_RATES = {
    "429": 0.06,
    "500": 0.05,
    "503": 0.05,
    "reset": 0.05,
    "timeout": 0.03,
    "malformed": 0.05,
    "truncated": 0.06,
    "empty": 0.05,
}


def test_every_injected_fault_is_survived_and_counted(make_stub, tmp_path: Path) -> None:
    # Seed 25 injects every kind of fault within the first 23 requests, and a run of 12
    # documents makes at least 36, so every kind is exercised whatever the arrival order.
    server = make_stub(fault_rates=FAULT_RATES, seed=25, timeout_sleep=2.0, retry_after=0.05)
    out = tmp_path / "run"
    n = 12
    result = run(generate_args(out, server.base_url, n, "--concurrency", "6", "--timeout", "1"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr

    manifest = assert_run_files_parse(out)
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == n
    assert len({r["id"] for r in records}) == n
    validator = record_validator()
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["finish_reason"] == "stop", "a cut-off document is never kept"
    assert manifest["status"] == "complete"

    injected = set(server.faults) - {"truncated"}
    assert injected >= {"429", "500", "503", "reset", "malformed", "empty", "timeout"}, (
        server.faults
    )
    expected: Counter[str] = Counter()
    for kind, count in server.faults.items():
        if kind in CLIENT_KIND:
            expected[CLIENT_KIND[kind]] += count
    assert manifest["faults"] == dict(expected), (manifest["faults"], server.faults)
    # Each transport fault was retried, except the last one of a task that ran out of retries.
    failed = sum(manifest["counts"]["failed_this_session"].values())
    assert manifest["calls_this_session"]["transport_retries"] == sum(expected.values()) - failed

    # Truncation arrives as an answer: each one is a paid, cached completion that stopped for
    # length, and a task gives up only after two of them in a row.
    cache = read_jsonl(out / "cache.jsonl")
    cut = sum(1 for line in cache if line["completion"]["finish_reason"] == "length")
    assert server.faults["truncated"] >= 1
    assert cut == server.faults["truncated"]
    gave_up = sum(1 for r in read_jsonl(out / "rejects.jsonl") if r["reason"] == "truncated")
    assert 2 * gave_up <= cut


# ---------------------------------------------------------------------------------------------
# Disk

# Root ignores file permissions through CAP_DAC_OVERRIDE (and friends). Dropping those from the
# capability bounding set before exec makes root subject to the owner bits like anyone else, so
# chmod means what it says; the interpreter (under /root here) stays reachable because root
# still owns it. No setuid, no preexec_fn (unsafe with the stub's thread).
_DROP_CAPS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP = 24
for cap in (1, 2, 3, 9):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, LINUX_IMMUTABLE
    if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
        sys.exit(f"prctl: errno {ctypes.get_errno()}")
os.execv(sys.argv[1], sys.argv[1:])
"""


# RLIMIT_FSIZE with SIGXFSZ ignored: a write past the limit fails with EFBIG (the first one may
# be cut short at the limit, exactly like a disk filling up mid-line). Both settings survive exec.
_LIMIT_FILE_SIZE = """
import os, resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


def unprivileged(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return [sys.executable, "-c", _DROP_CAPS, *args]


@pytest.fixture
def permissions_bite(tmp_path: Path) -> None:
    """Skip (with the reason) if even the unprivileged wrapper can write to a 0o555 folder."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        result = subprocess.run(
            unprivileged(["/bin/sh", "-c", f"touch {probe}/x"]), capture_output=True, text=True
        )
    finally:
        probe.chmod(0o755)
    if result.returncode == 0:
        pytest.skip(
            "running privileged and capabilities cannot be dropped: chmod does not stop writes"
        )


@pytest.fixture
def restore_permissions(tmp_path: Path) -> Iterator[None]:
    yield
    for path in [tmp_path, *tmp_path.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
        elif path.is_file():
            path.chmod(0o644)


def _make_read_only(out: Path, whole_tree: bool) -> None:
    if whole_tree:
        for path in out.iterdir():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    out.chmod(0o555)


@pytest.mark.parametrize("whole_tree", [False, True], ids=["folder-0555", "every-file-too"])
def test_read_only_run_directory_is_one_clear_line_and_changes_nothing(
    module_stub: OpenAIStub,
    finished: Path,
    tmp_path: Path,
    whole_tree: bool,
    permissions_bite: None,
    restore_permissions: None,
) -> None:
    stub = module_stub
    out = copy_of(finished, tmp_path)
    before = digests(out)
    calls = len(stub.log)
    _make_read_only(out, whole_tree)

    result = run(unprivileged(generate_args(out, stub.base_url, 6, "--model", "stub-model")))
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    assert "cannot write" in lines[0] and "permission denied" in lines[0], lines[0]
    assert digests(out) == before, "existing files must stay byte-identical"
    assert len(stub.log) == calls, "nothing may be paid that cannot be saved"

    # Building a dataset into a read-only run is refused the same way.
    built = run(unprivileged([str(ARCHETYPES_BIN), "build", str(out)]))
    assert built.returncode == 2, built.stderr
    assert len(error_lines(built)) == 1 and "Traceback" not in built.stderr
    assert digests(out) == before


def test_read_only_records_file_is_a_clear_error(
    module_stub: OpenAIStub,
    finished: Path,
    tmp_path: Path,
    permissions_bite: None,
    restore_permissions: None,
) -> None:
    stub = module_stub
    out = copy_of(finished, tmp_path)
    before = digests(out)
    (out / "records.jsonl").chmod(0o444)
    result = run(unprivileged(generate_args(out, stub.base_url, 4, "--model", "stub-model")))
    assert digests(out) == before
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "permission denied" in result.stderr


def _run_with_file_size_limit(
    out: Path, stub: OpenAIStub, n: int, limit: int
) -> subprocess.CompletedProcess[str]:
    args = generate_args(out, stub.base_url, n, "--concurrency", "4", "--model", "stub-model")
    return run([sys.executable, "-c", _LIMIT_FILE_SIZE, str(limit), *args])


def test_full_disk_is_one_clear_line_and_keeps_every_finished_line(
    module_stub: OpenAIStub, finished: Path, tmp_path: Path
) -> None:
    stub = module_stub
    out = copy_of(finished, tmp_path)
    before = {name: (out / name).read_bytes() for name in DATA_FILES if (out / name).exists()}
    # Room for about one more answer in the largest file, then EFBIG, mid-line.
    limit = max(len(data) for data in before.values()) + 3000

    result = _run_with_file_size_limit(out, stub, 8, limit)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    assert "cannot write" in lines[0]
    for name, data in before.items():
        if name.endswith(".jsonl"):
            assert (out / name).read_bytes().startswith(data), f"{name}: finished lines changed"
    assert max((out / name).stat().st_size for name in before) <= limit
    assert_run_files_parse(out, allow_partial_tail=True)

    # With room again, the same command trims the cut line and finishes the run.
    resumed = run(generate_args(out, stub.base_url, 8, "--concurrency", "4"))
    assert resumed.returncode == 0, resumed.stderr
    assert_run_files_parse(out)
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 8 and len({r["id"] for r in records}) == 8


def test_file_size_limit_message_says_what_to_do(
    module_stub: OpenAIStub, finished: Path, tmp_path: Path
) -> None:
    stub = module_stub
    out = copy_of(finished, tmp_path)
    limit = (out / "cache.jsonl").stat().st_size + 2000
    result = _run_with_file_size_limit(out, stub, 6, limit)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "rerun" in line or "--out" in line, line


# ---------------------------------------------------------------------------------------------
# Secrets


def _fake_keys() -> dict[str, str]:
    tail = secrets.token_hex(12)
    return {
        "OPENAI_API_KEY": f"sk-proj-FAKE{tail}openai",
        "ANTHROPIC_API_KEY": f"sk-ant-api03-FAKE{tail}anthropic",
        "HF_TOKEN": f"hf_FAKE{tail}hub",
    }


def _texts_of(path: Path) -> Iterator[str]:
    """What a file holds, as text a key could hide in: raw bytes, and decoded parquet cells
    (parquet pages are compressed, so a raw scan alone could miss a string)."""
    data = path.read_bytes()
    yield data.decode("utf-8", errors="replace")
    if path.suffix == ".parquet":
        yield json.dumps(pq.read_table(path).to_pylist(), default=str)


def test_no_key_reaches_any_file_or_output(stub, tmp_path: Path) -> None:
    keys = _fake_keys()
    home = tmp_path / "home"
    home.mkdir()
    env = base_env(
        **keys,
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        HF_HOME=str(home / ".cache" / "huggingface"),
    )
    out = tmp_path / "run"
    outputs: list[str] = []
    for args in (
        generate_args(out, stub.base_url, 4, "--concurrency", "4"),
        [str(ARCHETYPES_BIN), "build", str(out), "--split", "validation=0.5", "--format", "jsonl"],
        [str(ARCHETYPES_BIN), "publish", str(out), "--repo-id", "someone/corpus", "--dry-run"],
        [str(ARCHETYPES_BIN), "check", str(out)],
    ):
        result = run(args, env=env)
        assert result.returncode == 0, (args[1], result.stderr)
        outputs += [result.stdout, result.stderr]

    # The key really was in play: the OpenAI-compatible client sent it to the server.
    assert stub.authorizations[f"Bearer {keys['OPENAI_API_KEY']}"] > 0
    files = [p for root in (out, home) for p in root.rglob("*") if p.is_file()]
    assert any(p.parent.name == "dataset" or "dataset" in p.parts for p in files)
    assert any(p.suffix == ".parquet" for p in files)
    for name, key in keys.items():
        needles = (key, key.split("FAKE", 1)[1])  # the whole key, and its random part alone
        for text in outputs:
            assert not any(needle in text for needle in needles), f"{name} in command output"
        for path in files:
            for text in _texts_of(path):
                assert not any(needle in text for needle in needles), f"{name} in {path}"


def generate(out: Path, base_url: str, n: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        str(n),
        "--base-url",
        base_url,
        "--concurrency",
        "4",
        *extra,
    )


def test_generate_writes_valid_records_and_manifest(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate(out, stub.base_url, 6)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 6
    validator = record_validator()
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["writer_model"] == "stub-model"
        assert record["provider"] == "openai"
    assert len({r["id"] for r in records}) == 6
    assert {r["archetype_id"] for r in records} == {"patient-tutor", "lab-partner"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"]["accepted"] == 6
    assert manifest["model"] == "stub-model"
    assert manifest["base_url"] == stub.base_url
    assert manifest["usage"]["completions"] == 18  # an idea, a document and a judgement each
    judge = manifest["gates"]["judge"]
    assert (judge["mode"], judge["model"], judge["note"]) == ("enforce", "stub-model", "")
    assert judge["order_control"] and judge["escalate_model"] is None
    # Every document scored 5 (not borderline): no second reading, no stronger judge.
    assert manifest["judge_passes"] == {
        "order_control": {"documents": 0, "calls": 0, "cost_usd": 0.0},
        "escalation": {"model": None, "documents": 0, "calls": 0, "cost_usd": 0.0},
    }
    for record in records:
        assert record["judge"]["passed"] and record["judge_model"] == "stub-model"
        assert record["checks"]["language"] == "en"
        assert record["checks"]["near_duplicate_of"] is None
    assert {a["id"] for a in manifest["archetypes"]} == {"patient-tutor", "lab-partner"}
    assert all(len(a["spec_hash"]) == 16 for a in manifest["archetypes"])


def test_rerun_pays_nothing_and_raising_n_extends(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, stub.base_url, 4).returncode == 0
    first = read_jsonl(out / "records.jsonl")
    calls_after_first = len(stub.log)
    assert calls_after_first == 12  # idea, document, judgement per record

    again = generate(out, stub.base_url, 4)
    assert again.returncode == 0, again.stderr
    assert len(stub.log) == calls_after_first, "a rerun of a finished run must not call the model"
    assert "model calls 0" in again.stdout

    more = generate(out, stub.base_url, 7)
    assert more.returncode == 0, more.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 7
    assert records[:4] == first, "extending must keep the earlier documents untouched"
    assert len(stub.log) == calls_after_first + 9


def test_run_survives_every_kind_of_fault(make_stub, tmp_path: Path) -> None:
    rates = {
        "429": 0.08,
        "500": 0.06,
        "503": 0.06,
        "reset": 0.06,
        "timeout": 0.03,
        "malformed": 0.06,
        "truncated": 0.06,
        "empty": 0.06,
    }
    server = make_stub(fault_rates=rates, seed=7, timeout_sleep=5.0)
    out = tmp_path / "run"
    result = generate(out, server.base_url, 10, "--timeout", "1")
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 10
    assert len({r["id"] for r in records}) == 10
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    faults = manifest["faults"]
    for kind in ("429", "500", "503", "malformed", "empty"):
        assert faults.get(kind, 0) >= 1, (kind, faults, server.faults)
    assert faults.get("connection", 0) + faults.get("timeout", 0) >= 1
    # A truncated document is never kept: it is retried with more room.
    assert all(r["finish_reason"] == "stop" for r in records)


def _complete_lines(path: Path) -> int:
    """Lines a running writer has finished (the last one may be mid-write)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _kill_when_records(
    process: subprocess.Popen[str], path: Path, at_least: int, limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _complete_lines(path) >= at_least:
            break
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


def test_sigkill_then_resume_loses_nothing_and_repays_nothing(make_stub, tmp_path: Path) -> None:
    server = make_stub(latency=0.15)
    out = tmp_path / "run"
    n = 16
    args = [
        str(ARCHETYPES_BIN),
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        str(n),
        "--base-url",
        server.base_url,
        "--concurrency",
        "4",
    ]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    for kill_at in (3, 9, None):
        # What was answered and cached before this process started must never be asked again.
        cached = {
            (int(line["task_id"][:8], 16), line["step"] == "idea")
            for line in read_jsonl(out / "cache.jsonl")
        }
        log_start = len(server.log)
        process = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        if kill_at is None:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
        else:
            _kill_when_records(process, out / "records.jsonl", kill_at)
            assert process.returncode == -signal.SIGKILL
        repaid = [
            (e.seed, e.structured)
            for e in server.log[log_start:]
            if (e.seed, e.structured) in cached
        ]
        assert repaid == [], "a call whose answer was already cached was paid again"
        # Every file parses after a SIGKILL once the run directory is reopened (trimmed tail).
        with RunDir(out) as rundir:
            for name in ("records.jsonl", "rejects.jsonl", "cache.jsonl"):
                list(rundir.read_jsonl(name))

    records = read_jsonl(out / "records.jsonl")
    assert len(records) == n
    assert len({r["id"] for r in records}) == n, "no duplicates"


def test_second_process_on_same_run_directory_is_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunDir(out):
        result = generate(out, stub.base_url, 2)
    assert result.returncode == 2
    assert "is in use by archetypes pid" in result.stderr
    assert "Traceback" not in result.stderr
    assert stub.log == []


def test_budget_needs_a_known_price(tmp_path: Path, clean_env) -> None:
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "r"),
        "-n",
        "1",
        "--provider",
        "anthropic",
        "--model",
        "mystery-model",
        "--budget",
        "5",
        env={"ANTHROPIC_API_KEY": "sk-ant-test"},
    )
    assert result.returncode == 2
    assert "--budget needs a price for model 'mystery-model'" in result.stderr


@pytest.mark.parametrize(
    ("provider", "variable"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_missing_key_is_one_clear_line(provider: str, variable: str, tmp_path: Path) -> None:
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "r"),
        "-n",
        "1",
        "--provider",
        provider,
        "--model",
        "some-model",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{variable} is not set" in lines[0]
    assert not (tmp_path / "r" / "records.jsonl").exists()


def test_options_incompatible_with_an_existing_run_are_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, stub.base_url, 2).returncode == 0
    result = generate(out, stub.base_url, 2, "--seed", "5")
    assert result.returncode == 2
    assert "holds a run with seed=0" in result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 2


def test_ctrl_c_stops_gracefully_and_keeps_finished_work(make_stub, tmp_path: Path) -> None:
    server = make_stub(latency=0.3)
    out = tmp_path / "run"
    args = [
        str(ARCHETYPES_BIN),
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        "40",
        "--base-url",
        server.base_url,
        "--concurrency",
        "2",
    ]
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _complete_lines(out / "records.jsonl") < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    kept = read_jsonl(out / "records.jsonl")
    assert 2 <= len(kept) < 40
    assert manifest["counts"]["accepted"] == len(kept)


def test_unwritable_output_directory_is_a_clear_error(stub, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = generate(blocker, stub.base_url, 1)
    assert result.returncode == 2
    assert "exists and is not a directory" in result.stderr
    assert blocker.read_text() == "not a directory"


def test_a_fixable_judge_failure_gets_one_rewrite(make_stub, tmp_path: Path) -> None:
    server = make_stub(judge_fails_unrevised=True)
    out = tmp_path / "run"
    result = generate(out, server.base_url, 3)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 3
    assert all(r["revised"] for r in records)
    assert all(r["judge"]["passed"] and r["judge"]["focus_score"] == 5 for r in records)
    assert all(r["usage"]["model_calls"] == 3 for r in records)  # idea, write, rewrite


def test_a_run_the_gates_starve_stops_early_and_says_what_to_try(make_stub, tmp_path: Path) -> None:
    """The issue's run: a judge that names trait ids the spec does not have made 2,120 calls,
    kept nothing and exited 0. Now the run stops after its first attempts, exits 3, and its last
    line names the reason and what to try."""
    from generator.scheduler import STARVE_AFTER

    server = make_stub(judge_trait="not-a-trait-of-this-spec")
    out = tmp_path / "run"
    result = generate(out, server.base_url, 150)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("starved: ") and "judge-unparseable" in last, last
    assert "by the judge gate" in last and "--judge advisory" in last, last
    rejects = read_jsonl(out / "rejects.jsonl")
    # the first 50 decided it; the tasks in flight then (concurrency 4) finish, no new one starts
    assert STARVE_AFTER <= len(rejects) <= STARVE_AFTER + 4
    assert {r["reason"] for r in rejects} == {"judge-unparseable"}
    assert len(server.log) < 400, len(server.log)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "starved"
    assert manifest["counts"]["accepted"] == 0


def test_what_a_run_did_not_enforce_is_said_on_screen(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate(out, stub.base_url, 2, "--relax", "length", "--judge", "off")
    assert result.returncode == 0, result.stderr
    assert "not enforced in this run: --relax length, --judge off" in result.stdout
    enforced = generate(tmp_path / "enforced", stub.base_url, 2)
    assert "not enforced" not in enforced.stdout


def test_a_group_pays_one_idea_call_for_all_its_ideas(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True)
    out = tmp_path / "run"
    result = generate_against(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    ideas = idea_bodies(stub)
    assert [b.get("n") for b in ideas] == [4, 4], "two groups of four, one call each"
    assert len(stub.log) == 2 + 8 + 8, "ideas, documents, judgements"
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 8
    assert len({r["title"] for r in records}) == 8, "every document has an idea of its own"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples_per_request"] == 4
    assert manifest["shared_idea_answers"] == {"used": 8}
    # The call's usage is split over its answers, so nothing is lost or counted twice.
    cache = read_jsonl(out / "cache.jsonl")
    paid_ideas = [c for c in cache if c["step"] == "idea"]
    assert len(paid_ideas) == 8
    stub_prompt_tokens = [
        sum(len(str(m["content"])) for m in b["messages"]) // 4 for b in idea_bodies(stub)
    ]
    assert sum(c["completion"]["input_tokens"] for c in paid_ideas) == sum(stub_prompt_tokens)

    # Extending the run keeps every answer already paid for.
    before = len(stub.log)
    again = generate_against(out, stub.base_url, "-n", "12", "--samples-per-request", "4")
    assert again.returncode == 0, again.stderr
    assert len(stub.log) - before == 1 + 4 + 4
    assert len(read_jsonl(out / "records.jsonl")) == 12


def test_answers_that_repeat_each_other_are_asked_for_again_alone(
    make_stub, tmp_path: Path
) -> None:
    stub = make_stub(keep_bodies=True, samples="repeat")
    out = tmp_path / "run"
    result = generate_against(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert [b.get("n") for b in idea_bodies(stub)] == [4, 4] + [None] * 6
    records = read_jsonl(out / "records.jsonl")
    assert len({r["title"] for r in records}) == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"used": 2, "similar": 6}


def test_a_server_that_ignores_n_still_gets_every_idea(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True, samples="ignore")
    out = tmp_path / "run"
    result = generate_against(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"used": 2, "missing": 6}


def test_a_server_that_refuses_n_is_asked_one_idea_at_a_time(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True, samples="refuse")
    out = tmp_path / "run"
    result = generate_against(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    refused = [b for b in idea_bodies(stub) if b.get("n")]
    assert len(refused) <= 2, "after a refusal the run stops asking for several answers"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"refused": 8}


def test_resuming_with_another_sample_count_is_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate_against(out, stub.base_url, "-n", "2").returncode == 0
    result = generate_against(out, stub.base_url, "-n", "4", "--samples-per-request", "2")
    assert result.returncode == 2
    assert "samples_per_request=1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ("--provider", "anthropic", "--model", "claude-haiku-4-5"),
            {"ANTHROPIC_API_KEY": "x"},
            "at most 1 answer",
        ),
        (("--batch",), {}, "does not work with --batch"),
        (("--samples-per-request", "0"), {}, "--samples-per-request"),
    ],
)
def test_impossible_sample_requests_are_one_clear_line(
    stub, tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    base = () if "--provider" in args else ("--base-url", stub.base_url, "--model", "stub-model")
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "run"),
        "-n",
        "4",
        *base,
        "--samples-per-request",
        "4",
        *args,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not stub.log, "nothing is sent before the options are checked"
