"""Click arguments, options and callbacks that several commands share."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from generator.cli.providers import JudgeFlags
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

relax_option = click.option(
    "--relax",
    "relax",
    multiple=True,
    type=click.Choice(list(HEURISTIC_CHECKS)),
    help="Measure this heuristic check but do not enforce it (repeatable).",
)


def judge_options(command: Any) -> Any:
    """Add the --judge-* options (the judge and the stronger judge it escalates to); the command
    receives them as one `judge: JudgeFlags` argument."""
    options = [
        click.option(
            "--judge-provider",
            type=click.Choice(["local", "openai", "anthropic"]),
            default=None,
            help="Judge's provider (default: the writer's).",
        ),
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
        click.option(
            "--judge-escalate-provider",
            type=click.Choice(["local", "openai", "anthropic"]),
            default=None,
            help="The stronger judge's provider (default: openai with "
            "--judge-escalate-base-url, else the judge's).",
        ),
        click.option(
            "--judge-escalate-base-url",
            default=None,
            help="The stronger judge's OpenAI-compatible server.",
        ),
    ]

    decorated = _as_judge_flags(command)
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def _as_judge_flags(command: Any) -> Any:
    """Wrap a command so that it gets the seven --judge-* values as one JudgeFlags."""

    @functools.wraps(command)
    def with_judge_flags(**params: Any) -> Any:
        params["judge"] = JudgeFlags(
            provider=params.pop("judge_provider"),
            model=params.pop("judge_model"),
            base_url=params.pop("judge_base_url"),
            mode=params.pop("judge_mode"),
            escalate_model=params.pop("judge_escalate_model"),
            escalate_provider=params.pop("judge_escalate_provider"),
            escalate_base_url=params.pop("judge_escalate_base_url"),
        )
        return command(**params)

    return with_judge_flags
