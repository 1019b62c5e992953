"""The package as a user gets it: the wheel, installed into a fresh venv with no extras and no dev
tools, runs every everyday command. A module that the CLI imports but only the dev extra installs
(it happened: `aiohttp`) fails here, while the rest of the suite, whose venv has the dev tools,
would pass.

The venv takes a minute or two with pip's cache warm (the README's first command has just built
llama-cpp-python into it); the commands run in it are bounded by work: a 3-document run against
the local OpenAI-compatible stub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LIBRARY, REPO, read_jsonl
from tests.support.openai_stub import OpenAIStub

# A hang guard, not a time limit: the install's time depends on pip's cache and the machine.
pytestmark = [pytest.mark.install, pytest.mark.timeout(3600)]

SPEC = str(LIBRARY / "patient-tutor.yaml")
DEV_ONLY = ("pytest", "ruff", "mypy", "hypothesis", "httpx")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, REPO, cwd=root)
    (wheel,) = wheels.glob("archetype_corpus-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=root)
    env = {
        **os.environ,
        # As scripts/setup.sh builds it: the portable flags that avoid a crash on model load.
        "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF",
    }
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, cwd=root, env=env)
    return venv


def _user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no provider keys, and nothing that would let the venv's
    Python find this checkout's sources or the test venv's packages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(extra)
    return env


def test_the_wheel_alone_brings_everything_the_cli_imports(user_venv: Path, tmp_path: Path) -> None:
    python = user_venv / "bin" / "python"
    found = _run(
        python,
        "-c",
        "import importlib.util, json, generator; "
        f"print(json.dumps([generator.__file__, [m for m in {DEV_ONLY!r} "
        "if importlib.util.find_spec(m)]]))",
        cwd=tmp_path,
        env=_user_env(),
    )
    location, dev_tools = json.loads(found)
    assert Path(location).is_relative_to(user_venv), "imported the checkout, not the wheel"
    assert dev_tools == [], f"the user's venv should not hold dev tools: {dev_tools}"


def test_everyday_commands_run_in_the_users_venv(user_venv: Path, tmp_path: Path) -> None:
    archetypes = user_venv / "bin" / "archetypes"
    env = _user_env()
    assert "generate" in _run(archetypes, "--help", cwd=tmp_path, env=env)
    validated = _run(archetypes, "validate", LIBRARY, cwd=tmp_path, env=env)
    assert validated.count("ok  ") == len(list(LIBRARY.glob("*.yaml")))
    assert "patient-tutor" in _run(archetypes, "plan", SPEC, "-n", "4", cwd=tmp_path, env=env)
    shown = _run(archetypes, "show", "patient-tutor", "--brief", "compact", cwd=tmp_path, env=env)
    assert "Patient Tutor" in shown


def test_generate_and_build_against_a_local_server_in_the_users_venv(
    user_venv: Path, tmp_path: Path
) -> None:
    archetypes = user_venv / "bin" / "archetypes"
    stub = OpenAIStub()
    base_url = stub.start()
    try:
        env = _user_env(OPENAI_API_KEY="sk-test-not-a-real-key")
        out = tmp_path / "run"
        generated = _run(
            archetypes,
            "generate",
            SPEC,
            "--base-url",
            base_url,
            "--model",
            "stub-model",
            "-n",
            "3",
            "--out",
            out,
            cwd=tmp_path,
            env=env,
        )
        assert "accepted 3/3" in generated
        _run(archetypes, "build", out, cwd=tmp_path, env=env)
    finally:
        stub.stop()
    assert len(read_jsonl(out / "records.jsonl")) == 3
    assert list((out / "dataset").rglob("*.parquet"))
    assert stub.log, "the run never reached the server"
