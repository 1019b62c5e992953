"""`archetypes publish` against a stand-in for the Hub's HTTP API on 127.0.0.1 (tests/support/
hub_stub.py), reached through huggingface_hub's own client with HF_ENDPOINT pointing at it."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.dataset import BuildOptions, build
from generator.errors import ConfigError, UserError
from generator.publish import MAX_FILES_PER_COMMIT, dry_run, publish
from tests.conftest import REPO
from tests.support.hub_stub import XET_TOKEN, HubStub

FIXTURE = REPO / "tests" / "data" / "run_fixture"
TOKEN = "hf_TestTokenThatMustNeverLeak0123456789"
REPO_ID = "alice/archetype-corpus"
JUDGE = "judge-model-2025"  # the fixture run's enforcing judge


@pytest.fixture
def hub() -> Iterator[HubStub]:
    stub = HubStub()
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def hf_env(hub: HubStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStub]:
    """HF_ENDPOINT at the stub, HF_TOKEN set, and no stored login from the developer's machine."""
    import huggingface_hub.constants

    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_HUB_OFFLINE",
        "HF_HUB_DISABLE_XET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(
        huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens")
    )
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    # hf_xet remembers, per endpoint, which chunks it has uploaded and then skips them. A new
    # stub on a reused port holds none of them: each test gets its own empty Xet cache.
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "xet-cache"))
    yield hub


def judge_every_record(run: Path) -> None:
    """Give the fixture's unjudged records a passing verdict from the run's enforcing judge, so
    that the run is one `publish` accepts without --allow-unjudged."""
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    for record in records:
        if record["judge"] is None:
            record["judge_model"] = JUDGE
            record["judge"] = {
                "model": JUDGE,
                "focus_score": 4,
                "trait_scores": [
                    {
                        "trait": record["trait_focus"],
                        "score": 4,
                        "evidence": record["text"][:40],
                        "evidence_found": True,
                    }
                ],
                "anti_markers": [],
                "backfire_flags": [],
                "critique": "The trait shows in what the assistant says.",
                "passed": True,
            }
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """The fixture run with every document judged by an enforcing judge, built."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    judge_every_record(run)
    build(run, BuildOptions(splits={"validation": 0.2}, formats=("parquet", "jsonl")))
    return run


def local_bytes(run: Path) -> dict[str, bytes]:
    root = run / "dataset"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def parquet_shards(run: Path) -> dict[str, bytes]:
    return {path: data for path, data in local_bytes(run).items() if path.endswith(".parquet")}


def lfs_lines(run: Path) -> list[dict[str, Any]]:
    """The `lfsFile` commit lines huggingface_hub must send for the run's parquet shards."""
    return [
        {"path": path, "algo": "sha256", "oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for path, data in sorted(parquet_shards(run).items())
    ]


@pytest.fixture
def no_xet(hf_env: HubStub, monkeypatch: pytest.MonkeyPatch) -> HubStub:
    """huggingface_hub without Xet (HF_HUB_DISABLE_XET=1): the LFS batch API, basic transfer."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    return hf_env


def assert_token_nowhere(*texts: str, folder: Path | None = None) -> None:
    for text in texts:
        assert TOKEN not in text
    if folder is not None:
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------
# Publishing


def test_first_publish_creates_the_repo_and_uploads_everything_in_one_commit(
    hf_env: HubStub, built: Path, tmp_path: Path
) -> None:
    result = publish(built, REPO_ID, message="First corpus")
    commits = hf_env.commits(REPO_ID)
    assert len(commits) == 1
    assert commits[0]["summary"] == "First corpus"
    assert hf_env.files(REPO_ID) == local_bytes(built)
    assert sorted(commits[0]["added"]) == sorted(local_bytes(built))
    assert result.commit_url and result.commit_url.endswith(commits[0]["oid"])
    assert not hf_env.repos[REPO_ID].private
    # the parquet shards went the way every user's go: through Xet storage, then named by
    # sha256 and size in `lfsFile` lines; the card and jsonl stay regular files
    assert sorted(commits[0]["lfs"], key=lambda line: line["path"]) == lfs_lines(built)
    stored = hf_env.lfs_files(REPO_ID)
    assert sorted(stored) == sorted(parquet_shards(built))
    assert all(xet_hash and len(xet_hash) == 64 for xet_hash in stored.values())
    for data in parquet_shards(built).values():
        assert hf_env.storage[hashlib.sha256(data).hexdigest()] == data
    paths = hf_env.paths()
    assert f"/api/datasets/{REPO_ID}/xet-write-token/main" in paths
    assert any(path.startswith("/cas/v1/xorbs/default/") for path in paths)
    assert "/cas/v1/shards" in paths
    # the Hub gets the token as a Bearer header, the storage only the short-lived Xet token,
    # and the token is in no body
    assert hf_env.requests
    for request in hf_env.requests:
        on_storage = request.path.startswith(("/cas/", "/v1/"))
        expected = XET_TOKEN if on_storage else TOKEN
        assert request.headers.get("Authorization") == f"Bearer {expected}", request.path
        assert TOKEN.encode() not in request.body
    assert_token_nowhere(*result.describe(), folder=tmp_path)


# huggingface_hub 2.4 PUTs an LFS file with httpx2's deprecated `data=` (a warning only)
HTTPX_DATA_WARNING = "ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"


@pytest.mark.filterwarnings(HTTPX_DATA_WARNING)
def test_lfs_basic_transfer_when_xet_is_off(no_xet: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    commits = no_xet.commits(REPO_ID)
    assert len(commits) == 1
    assert sorted(commits[0]["lfs"], key=lambda line: line["path"]) == lfs_lines(built)
    assert no_xet.files(REPO_ID) == local_bytes(built)
    assert no_xet.lfs_files(REPO_ID) == dict.fromkeys(parquet_shards(built))  # no xet hash
    shards = parquet_shards(built)
    assert sorted(no_xet.paths("PUT")) == sorted(
        f"/lfs-storage/{hashlib.sha256(data).hexdigest()}" for data in shards.values()
    )
    assert no_xet.paths().count(f"/datasets/{REPO_ID}.git/info/lfs/objects/verify") == len(shards)
    assert not any(path.startswith("/cas/") for path in no_xet.paths())
    again = publish(built, REPO_ID)
    assert again.commit_url is None and len(no_xet.commits(REPO_ID)) == 1


def test_publishing_again_unchanged_makes_no_commit(hf_env: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    assert sorted(hf_env.lfs_files(REPO_ID)) == sorted(parquet_shards(built))  # LFS files
    first = len(hf_env.requests)
    again = publish(built, REPO_ID)
    assert again.commit_url is None
    assert len(hf_env.commits(REPO_ID)) == 1
    assert sorted(again.unchanged) == sorted(local_bytes(built))
    assert again.describe()[-1] == (
        f"{hf_env.endpoint}/datasets/{REPO_ID} is up to date "
        f"({len(local_bytes(built))} files unchanged); no commit made"
    )
    second = [r.path.split("?")[0] for r in hf_env.requests[first:]]
    assert second == ["/api/repos/create", f"/api/datasets/{REPO_ID}/tree/main"]


def test_the_tree_lists_lfs_files_as_the_hub_does(hf_env: HubStub, built: Path) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    publish(built, REPO_ID)
    api = HfApi(endpoint=hf_env.endpoint, token=TOKEN)
    tree = api.list_repo_tree(REPO_ID, repo_type="dataset", recursive=True)
    files = {entry.path: entry for entry in tree if isinstance(entry, RepoFile)}
    for path, data in parquet_shards(built).items():
        sha256 = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
        pointer += f"size {len(data)}\n"
        entry = files[path]
        assert entry.lfs is not None
        assert (entry.size, entry.lfs.sha256, entry.lfs.size) == (len(data), sha256, len(data))
        assert entry.lfs.pointer_size == len(pointer)
        assert (
            entry.blob_id
            == hashlib.sha1(b"blob %d\0" % len(pointer) + pointer.encode()).hexdigest()
        )
        assert entry.xet_hash == hf_env.lfs_files(REPO_ID)[path]
    assert files["README.md"].lfs is None


def test_a_changed_shard_is_sent_again(hf_env: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    build(built, BuildOptions(splits={"validation": 0.3}, formats=("parquet", "jsonl")))
    result = publish(built, REPO_ID)
    assert len(hf_env.commits(REPO_ID)) == 2
    sent = sorted(line["path"] for line in hf_env.commits(REPO_ID)[1]["lfs"])
    assert sent == sorted(parquet_shards(built))
    assert sorted(f.path_in_repo for f in result.uploaded) == sorted(
        [*parquet_shards(built), "README.md", "jsonl/train.jsonl", "jsonl/validation.jsonl"]
    )
    assert hf_env.files(REPO_ID) == local_bytes(built)


def test_a_rebuild_replaces_stale_shards_in_one_commit(hf_env: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    build(built, BuildOptions(splits={"validation": 0.2}, shard_rows=10))  # no jsonl now
    result = publish(built, REPO_ID)
    commits = hf_env.commits(REPO_ID)
    assert len(commits) == 2
    assert hf_env.files(REPO_ID) == local_bytes(built)  # old shards and jsonl/ are gone
    assert "jsonl/train.jsonl" in result.deleted
    assert "data/train-00000-of-00001.parquet" in result.deleted
    assert "data/train-00000-of-00003.parquet" in [f.path_in_repo for f in result.uploaded]


def test_files_outside_the_dataset_folders_are_left_alone(hf_env: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    hf_env.repos[REPO_ID].branches["main"]["notes/extra.md"] = b"kept by the owner\n"
    (built / "dataset" / "README.md").write_text(
        (built / "dataset" / "README.md").read_text() + "\nEdited.\n"
    )
    result = publish(built, REPO_ID)
    assert [f.path_in_repo for f in result.uploaded] == ["README.md"]
    assert result.deleted == []
    assert hf_env.files(REPO_ID)["notes/extra.md"] == b"kept by the owner\n"


def test_private_and_revision(hf_env: HubStub, built: Path) -> None:
    result = publish(built, REPO_ID, private=True, revision="corpus-v2")
    assert hf_env.repos[REPO_ID].private
    assert result.revision == "corpus-v2"
    assert hf_env.commits(REPO_ID)[0]["revision"] == "corpus-v2"
    assert hf_env.files(REPO_ID, "corpus-v2") == local_bytes(built)
    assert hf_env.files(REPO_ID, "main") == {}


def test_private_on_an_existing_public_repo_says_so(hf_env: HubStub, built: Path) -> None:
    publish(built, REPO_ID)
    result = publish(built, REPO_ID, private=True)
    assert any("already exists and is public" in line for line in result.describe())


# ---------------------------------------------------------------------------------------------
# Errors: one clear line, exit code 2, nothing local changed


@pytest.mark.parametrize("endpoint", ["create", "commit"])
def test_a_refusal_quotes_the_hub(
    hf_env: HubStub, built: Path, tmp_path: Path, endpoint: str
) -> None:
    hf_env.failures[endpoint] = (
        403,
        'You don\'t have the rights to create a dataset under the namespace "alice"',
    )
    before = local_bytes(built)
    with pytest.raises(UserError) as info:
        publish(built, REPO_ID)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "(403)" in message
    assert 'rights to create a dataset under the namespace "alice"' in message
    assert "\n" not in message
    assert local_bytes(built) == before
    assert_token_nowhere(message, folder=tmp_path)


def test_a_token_that_cannot_create_may_still_update_an_existing_repo(
    hf_env: HubStub, built: Path
) -> None:
    publish(built, REPO_ID)
    hf_env.failures["create"] = (403, "You cannot create repositories in this namespace")
    (built / "dataset" / "README.md").write_text(
        (built / "dataset" / "README.md").read_text() + "\nEdited.\n"
    )
    result = publish(built, REPO_ID)
    assert result.commit_url is not None
    assert len(hf_env.commits(REPO_ID)) == 2


def test_a_rejected_token_says_how_to_fix_it(hf_env: HubStub, built: Path) -> None:
    hf_env.failures["create"] = (401, "Invalid credentials in Authorization header")
    with pytest.raises(ConfigError, match=r"401: Invalid credentials.*hf auth login"):
        publish(built, REPO_ID)


def test_missing_token(hf_env: HubStub, built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ConfigError, match=r"set HF_TOKEN or run `hf auth login`") as info:
        publish(built, REPO_ID)
    assert info.value.exit_code == 2
    assert hf_env.requests == []


@pytest.mark.parametrize(
    "repo_id",
    [
        "no-slash",
        "a/b/c",
        "-bad/name",
        "alice/name-",
        "alice/na..me",
        "alice/na--me",
        "/name",
        "alice/",
    ],
)
def test_bad_repo_id_is_refused_before_any_request(
    hf_env: HubStub, built: Path, repo_id: str
) -> None:
    with pytest.raises(UserError, match="expected OWNER/NAME"):
        publish(built, repo_id)
    with pytest.raises(UserError, match="expected OWNER/NAME"):
        dry_run(built, repo_id)
    assert hf_env.requests == []


def test_nothing_built_yet(hf_env: HubStub, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    with pytest.raises(UserError, match=r"no dataset built yet; run `archetypes build .*` first"):
        publish(run, REPO_ID)
    assert hf_env.requests == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_hub_names_the_endpoint(
    hf_env: HubStub, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(UserError) as info:
        publish(built, REPO_ID)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/api/repos/create" in message
    assert "connection refused" in message
    assert_token_nowhere(message)


# ---------------------------------------------------------------------------------------------
# Dry run


def test_dry_run_lists_files_and_prints_the_card_without_network(
    hf_env: HubStub, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")  # no token needed
    lines = dry_run(built, REPO_ID)
    text = "\n".join(lines)
    for path, content in local_bytes(built).items():
        assert any(path in line and f"{len(content):,} bytes" in line for line in lines), path
    assert "task_categories:" in text and "## Intended use" in text
    assert hf_env.requests == []


# ---------------------------------------------------------------------------------------------
# The command


def _cli() -> Any:
    from generator.cli import cli

    return cli


def test_cli_publish_and_errors(
    hf_env: HubStub, built: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    ok = runner.invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID])
    assert ok.exit_code == 0, ok.output
    assert "committed" in ok.output
    same = runner.invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID])
    assert same.exit_code == 0 and "no commit made" in same.output
    dry = runner.invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID, "--dry-run"])
    assert dry.exit_code == 0 and "README.md" in dry.output and "task_categories" in dry.output
    bad = runner.invoke(_cli(), ["publish", str(built), "--repo-id", "nope"])
    assert bad.exit_code == 2 and "expected OWNER/NAME" in bad.output
    hf_env.failures["create"] = (403, "Forbidden: no write access to bob")
    refused = runner.invoke(_cli(), ["publish", str(built), "--repo-id", "bob/corpus"])
    assert refused.exit_code == 2
    assert "no write access to bob" in refused.output
    assert "Traceback" not in refused.output
    captured = capfd.readouterr()
    assert_token_nowhere(
        ok.output,
        same.output,
        dry.output,
        bad.output,
        refused.output,
        captured.out,
        captured.err,
        folder=tmp_path,
    )


def test_cli_publish_without_token(
    hf_env: HubStub, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    monkeypatch.delenv("HF_TOKEN")
    result = CliRunner().invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID])
    assert result.exit_code == 2
    assert "set HF_TOKEN or run `hf auth login`" in result.output


# ---------------------------------------------------------------------------------------------
# No unjudged corpus leaves by accident


def set_judge(run: Path, judge: dict[str, Any] | None) -> None:
    """The manifest's `gates.judge` as `generate` writes it (None: a manifest without it)."""
    manifest = json.loads((run / "manifest.json").read_text())
    if judge is None:
        manifest.pop("gates")
    else:
        manifest["gates"]["judge"] = judge
    (run / "manifest.json").write_text(json.dumps(manifest))


TINY = "SmolLM2-135M-Instruct"
UNJUDGED = {
    "judge off": ({"mode": "off", "model": None, "note": ""}, "the judge was off"),
    "advisory": ({"mode": "advisory", "model": JUDGE, "note": ""}, "was advisory"),
    "embedded model": ({"mode": "advisory", "model": TINY, "note": ""}, "was advisory"),
    "embedded model enforced": ({"mode": "enforce", "model": TINY, "note": ""}, TINY),
    "no judge in the manifest": (None, "does not say which judge ran"),
}


@pytest.mark.parametrize("case", sorted(UNJUDGED))
def test_publish_refuses_a_corpus_no_enforcing_judge_checked(
    hf_env: HubStub, built: Path, case: str
) -> None:
    from click.testing import CliRunner

    judge, why = UNJUDGED[case]
    set_judge(built, judge)
    runner = CliRunner()
    for extra in ([], ["--dry-run"]):
        refused = runner.invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID, *extra])
        assert refused.exit_code == 2, refused.output
        lines = refused.output.strip().splitlines()
        assert len(lines) == 1, lines
        assert "--allow-unjudged" in lines[0] and why in lines[0], lines[0]
        assert "Traceback" not in refused.output
    assert hf_env.requests == [], "refused before any request to the Hub"
    with pytest.raises(UserError, match="--allow-unjudged"):
        dry_run(built, REPO_ID)

    dry = runner.invoke(
        _cli(), ["publish", str(built), "--repo-id", REPO_ID, "--dry-run", "--allow-unjudged"]
    )
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("note: publishing a corpus no enforcing judge checked")
    allowed = runner.invoke(
        _cli(), ["publish", str(built), "--repo-id", REPO_ID, "--allow-unjudged"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "note: publishing a corpus no enforcing judge checked" in allowed.output
    assert "committed" in allowed.output


def test_publish_refuses_a_run_with_unjudged_documents_even_if_its_last_session_enforced(
    hf_env: HubStub, tmp_path: Path
) -> None:
    # The fixture as it is: an enforcing judge in the manifest, but 6 documents carry no verdict
    # (a session with the judge off, later extended with it on).
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    build(run)
    with pytest.raises(UserError, match=r"6 of 30 documents carry no judge's verdict"):
        publish(run, REPO_ID)
    assert publish(run, REPO_ID, allow_unjudged=True).commit_url
    # a document kept although its verdict failed it: an advisory session
    judge_every_record(run)
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    records[0]["judge"]["passed"] = False
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(UserError, match=r"1 of 30 documents were kept although the judge"):
        dry_run(run, REPO_ID)


def test_a_run_generated_without_a_judge_publishes_once_checked_with_one(
    stub: Any, tmp_path: Path
) -> None:
    """The way the refusal points: `check --apply` with an enforcing judge, then build again."""
    from tests.conftest import LIBRARY, run_cli

    run = tmp_path / "run"
    spec = str(LIBRARY / "patient-tutor.yaml")
    options = ["--out", str(run), "-n", "3", "--base-url", stub.base_url, "--judge", "off"]
    made = run_cli("generate", spec, *options)
    assert made.returncode == 0, made.stderr
    assert run_cli("build", str(run)).returncode == 0
    refused = run_cli("publish", str(run), "--repo-id", REPO_ID, "--dry-run")
    assert refused.returncode == 2 and "the judge was off" in refused.stderr
    assert "--allow-unjudged" in refused.stderr and "archetypes check" in refused.stderr

    checked = run_cli("check", str(run), "--apply")
    assert checked.returncode == 0, checked.stderr
    assert run_cli("build", str(run)).returncode == 0
    dry = run_cli("publish", str(run), "--repo-id", REPO_ID, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "**Judged.**" in dry.stdout and "`stub-model` (3 documents)" in dry.stdout


# ---------------------------------------------------------------------------------------------
# When the upload to the Hub's file storage fails: one line, exit 2, nothing committed


STORAGE_FAILURES = {
    "xet token refused": ("xet-token", "the Hub refused a storage write token (403)"),
    "xorb refused": ("xorb", "refused the upload (403)"),
    "lfs upload refused": ("lfs-upload", "refused the upload (403)"),
}


@pytest.mark.filterwarnings(HTTPX_DATA_WARNING)
@pytest.mark.parametrize("case", sorted(STORAGE_FAILURES))
def test_a_failed_upload_to_storage_is_one_line_naming_what_to_check(
    hf_env: HubStub,
    built: Path,
    case: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import huggingface_hub.constants
    from click.testing import CliRunner

    route, what = STORAGE_FAILURES[case]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", route == "lfs-upload")
    hf_env.failures[route] = (403, "Forbidden: this token may not write here")
    result = CliRunner().invoke(_cli(), ["publish", str(built), "--repo-id", REPO_ID])
    assert result.exit_code == 2, result.output
    # huggingface_hub's own progress bars aside, the output is one line
    lines = [line for line in result.output.splitlines() if line.strip() and "|" not in line]
    assert len(lines) == 1, lines
    host = f"127.0.0.1:{hf_env.port}"
    shard = "data/train-00000-of-00001.parquet"
    assert lines[0].startswith(f"error: could not upload 2 file(s), e.g. {shard}, for {REPO_ID}: ")
    assert what in lines[0]
    assert f"check network access to {host}" in lines[0]
    assert f"the token has write access to {REPO_ID}" in lines[0]
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert hf_env.commits(REPO_ID) == []
    assert_token_nowhere(result.output, *capfd.readouterr())


# ---------------------------------------------------------------------------------------------
# A corpus of many shards: several commits the Hub accepts, resumable


@pytest.fixture
def many_shards(tmp_path: Path) -> Path:
    """The fixture run with 4x its documents (new ids and texts), built one row per shard:
    120 parquet shards and the card."""
    run = tmp_path / "many"
    shutil.copytree(FIXTURE, run)
    judge_every_record(run)
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    copies = []
    for copy in range(4):
        for record in records:
            new_id = hashlib.sha256(f"{record['id']}-{copy}".encode()).hexdigest()[:16]
            twin = dict(record, id=new_id, text=f"{record['text']} ({copy})")
            copies.append(twin)
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in copies))
    build(run, BuildOptions(shard_rows=1))
    assert len(parquet_shards(run)) == 120
    return run


def test_many_shards_go_in_several_commits_of_fewer_than_100_files(
    hf_env: HubStub, many_shards: Path
) -> None:
    result = publish(many_shards, REPO_ID)
    commits = hf_env.commits(REPO_ID)
    assert [len(c["added"]) for c in commits] == [50, 50, 21]
    assert all(len(c["added"]) + len(c["deleted"]) < 100 for c in commits)
    assert commits[-1]["added"][-1] == "README.md"  # the card comes with the last of the data
    assert [c["summary"].rsplit(" ", 1)[-1] for c in commits] == ["[1/3]", "[2/3]", "[3/3]"]
    assert sum(len(c["lfs"]) for c in commits) == 120
    assert hf_env.files(REPO_ID) == local_bytes(many_shards)
    text = "\n".join(result.describe())
    assert "split into 3 commits of at most 50 files each" in text
    assert result.commit_urls == [
        f"{hf_env.endpoint}/datasets/{REPO_ID}/commit/{c['oid']}" for c in commits
    ]
    assert publish(many_shards, REPO_ID).commit_url is None


def test_a_publish_that_fails_part_way_resumes(hf_env: HubStub, many_shards: Path) -> None:
    from click.testing import CliRunner

    hf_env.fail_commits_from = 1
    broken = CliRunner().invoke(_cli(), ["publish", str(many_shards), "--repo-id", REPO_ID])
    assert broken.exit_code == 2, broken.output
    lines = [line for line in broken.output.splitlines() if line.strip() and "|" not in line]
    assert len(lines) == 1, lines
    assert "1 of 3 commits landed, run the same command again" in broken.output
    landed = hf_env.commits(REPO_ID)[0]["added"]
    assert len(landed) == MAX_FILES_PER_COMMIT

    hf_env.fail_commits_from = None
    before = len(hf_env.requests)
    result = publish(many_shards, REPO_ID)
    assert sorted(result.unchanged) == sorted(landed)
    assert len(result.uploaded) == 71
    assert [len(c["added"]) for c in hf_env.commits(REPO_ID)] == [50, 50, 21]
    assert hf_env.files(REPO_ID) == local_bytes(many_shards)
    # the shards that landed were not sent again
    resent = {line["path"] for c in hf_env.commits(REPO_ID)[1:] for line in c["lfs"]}
    assert not resent & set(landed)
    assert len([r for r in hf_env.requests[before:] if r.path.startswith("/cas/v1/shards")]) == 2
