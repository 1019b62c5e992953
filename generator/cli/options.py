"""Click arguments, options and callbacks that several commands share."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import click

from generator.cli.providers import JudgeFlags, ModelFlags
from generator.gates.heuristics import CHECKS as HEURISTIC_CHECKS
from generator.resources import library_dir


def spec_paths(paths: tuple[Path, ...]) -> list[Path]:
    """The spec files or folders given, or the starter library when none are."""
    return list(paths) if paths else [library_dir()]


def positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Click callback: refuse counts below 1."""
    if value is not None and value < 1:
        raise click.BadParameter("must be at least 1")
    return value


paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path, exists=False, dir_okay=True)
)

run_dir_argument = click.argument(
    "run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False)
)

samples_option = click.option(
    "--samples-per-request",
    "samples",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Ideas per call (n) for OpenAI-compatible endpoints: groups of this many documents share "
    "their setting, people and situation and get their ideas from one call; an answer that "
    "nearly repeats an earlier one of its call is asked for again on its own.",
)


def _above_zero(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: refuse amounts of 0 or less."""
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0")
    return value


budget_option = click.option(
    "--budget",
    type=float,
    default=None,
    callback=_above_zero,
    help="Stop before spending more than this many USD (estimated from prices and usage).",
)

prices_option = click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML price table overriding the shipped one.",
)

timeout_option = click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds before one request is abandoned and retried.",
)

relax_option = click.option(
    "--relax",
    "relax",
    multiple=True,
    type=click.Choice(list(HEURISTIC_CHECKS)),
    help="Measure this heuristic check but do not enforce it (repeatable).",
)


_WRITER_MODEL_HELP = "Model name; for local, a path to a .gguf file (default: embedded SmolLM2)."
_WRITER_BASE_URL_HELP = (
    "OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama)."
)


def _provider_option(flag: str, help_text: str) -> Any:
    """An option naming a provider (unset: the command picks one)."""
    return click.option(
        flag, type=click.Choice(["local", "openai", "anthropic"]), default=None, help=help_text
    )


def model_options(
    model_help: str = _WRITER_MODEL_HELP, base_url_help: str = _WRITER_BASE_URL_HELP
) -> Any:
    """Add --provider, --model, --base-url (repeatable: the first is the server, the rest its
    fleet) and --chat-format; the command receives them as one `model: ModelFlags` argument.
    The help of --model and --base-url says which model they name (the writer by default)."""
    options = [
        _provider_option(
            "--provider",
            "Default: openai with --base-url or OPENAI_API_KEY, anthropic with "
            "ANTHROPIC_API_KEY, else the embedded local model.",
        ),
        click.option("--model", default=None, help=model_help),
        click.option("--base-url", "base_urls", multiple=True, help=base_url_help),
        click.option(
            "--chat-format",
            default=None,
            help="Local GGUF models only: llama-cpp-python's chat format (chatml, gemma, "
            "llama-3...); default: the file's own template.",
        ),
    ]

    def decorate(command: Any) -> Any:
        return _bundled(command, options, ModelFlags, into="model")

    return decorate


def judge_options(command: Any) -> Any:
    """Add the --judge-* options (the judge and the stronger judge it escalates to); the command
    receives them as one `judge: JudgeFlags` argument."""
    options = [
        _provider_option("--judge-provider", "Judge's provider (default: the writer's)."),
        click.option("--judge-model", default=None, help="Judge's model (default: the writer's)."),
        click.option("--judge-base-url", default=None, help="Judge's OpenAI-compatible server."),
        click.option(
            "--judge",
            "judge_mode",
            type=click.Choice(["enforce", "advisory", "off"]),
            default=None,
            help="enforce the judge's verdict, only record it, or skip the judge "
            "(default: enforce; advisory when the judge is the embedded tiny model).",
        ),
        click.option(
            "--judge-escalate-model",
            default=None,
            metavar="M",
            help="A stronger judge for the documents the judge cannot settle (borderline, and "
            "its two readings in different rubric orders disagree or are unsure); its verdict "
            "stands.",
        ),
        _provider_option(
            "--judge-escalate-provider",
            "The stronger judge's provider (default: openai with "
            "--judge-escalate-base-url, else the judge's).",
        ),
        click.option(
            "--judge-escalate-base-url",
            default=None,
            help="The stronger judge's OpenAI-compatible server.",
        ),
    ]

    return _bundled(command, options, JudgeFlags, into="judge", prefix="judge_")


def _bundled(
    command: Any, options: list[Any], flags: type[Any], into: str, prefix: str = ""
) -> Any:
    """Add the options to a command, which receives their values as one `into` argument: the
    dataclass `flags`, whose field F is the value of the option whose parameter is prefix + F."""

    @functools.wraps(command)
    def with_flags(**params: Any) -> Any:
        values = {f.name: params.pop(prefix + f.name) for f in dataclasses.fields(flags)}
        params[into] = flags(**values)
        return command(**params)

    decorated = with_flags
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
