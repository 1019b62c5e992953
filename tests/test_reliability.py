"""Reliability: real `archetypes` processes against the stub server, killed, starved and fed faults.

- Kill and resume: SIGKILL at seeded random points, then completion; nothing lost, nothing
  duplicated, nothing paid twice (proved from the stub's request log).
- Faults: every fault the stub injects and the client sees is counted in the manifest.
- Disk: a read-only run directory and a file-size limit (EFBIG, standing in for a full disk)
  give one clear line, exit 2, and leave what was written intact.
- Secrets: fake keys in the environment never reach any file written or any output.
"""

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

from tests.conftest import ARCHETYPES_BIN, LIBRARY, REPO, read_jsonl
from tests.support.openai_stub import OpenAIStub, StubConfig, text_hash

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
