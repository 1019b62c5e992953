"""The options several commands share (generator/cli/options.py): the model flags of generate,
probes and eval are one block, with one meaning and one check."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.cli.providers import ModelFlags

MODEL_COMMANDS = ("generate", "probes", "eval")
MODEL_FLAGS = ("--provider", "--model", "--base-url", "--chat-format")


def _model_params(name: str) -> dict[str, tuple[object, ...]]:
    """Each model flag of a command: its parameter name, default, repeatability and choices."""
    command = cli.commands[name]
    found = {}
    for param in command.params:
        flag = next((opt for opt in param.opts if opt in MODEL_FLAGS), None)
        if flag is not None:
            choices = getattr(param.type, "choices", None)
            found[flag] = (param.name, param.default, param.multiple, choices)
    return found


def test_the_model_commands_share_the_same_model_flags() -> None:
    expected = _model_params("generate")
    assert set(expected) == set(MODEL_FLAGS)
    assert expected["--base-url"][0::2] == ("base_urls", True)  # repeatable: a fleet
    assert expected["--provider"][3] == ("local", "openai", "anthropic")
    for name in MODEL_COMMANDS[1:]:
        assert _model_params(name) == expected, name
        # The help lists them, as a user sees them.
        help_text = CliRunner().invoke(cli, [name, "--help"]).output
        assert all(flag in help_text for flag in MODEL_FLAGS), name


@pytest.mark.parametrize("name", MODEL_COMMANDS)
@pytest.mark.parametrize(
    "server", [("--provider", "openai"), ("--base-url", "http://127.0.0.1:9/v1")]
)
def test_chat_format_with_a_server_is_refused(
    name: str, server: tuple[str, str], tmp_path: Path, clean_env: None
) -> None:
    out = tmp_path / ("probes.jsonl" if name == "probes" else "out")
    result = CliRunner().invoke(cli, [name, "--out", str(out), *server, "--chat-format", "chatml"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --chat-format: only for --provider local" in result.output
    assert not out.exists()


def test_model_flags_name_the_server_its_fleet_and_the_local_template(clean_env: None) -> None:
    fleet = ModelFlags(None, "m", ("http://a/v1", "http://b/v1", "http://c/v1"), None).config(5.0)
    assert (fleet.provider, fleet.model, fleet.base_url) == ("openai", "m", "http://a/v1")
    assert fleet.fleet == ("http://b/v1", "http://c/v1") and fleet.timeout == 5.0
    local = ModelFlags("local", None, (), "gemma").config(1.0)
    assert (local.provider, local.chat_format, local.base_url, local.fleet) == (
        "local",
        "gemma",
        None,
        (),
    )
    with pytest.raises(click.BadParameter):
        ModelFlags("anthropic", "m", (), "chatml").config(1.0)
