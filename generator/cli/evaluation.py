"""`archetypes eval`: put held-out probes to a model (and a baseline) and report per trait."""

from __future__ import annotations

from pathlib import Path

import click

from generator.backends.base import BackendConfig
from generator.cli.exits import EXIT_SHORT
from generator.cli.options import (
    budget_option,
    judge_options,
    model_options,
    positive,
    prices_option,
    spec_paths,
    timeout_option,
)
from generator.cli.providers import JudgeFlags, ModelFlags
from generator.resources import probe_library_dir


@click.command(name="eval")
@click.argument("probes", nargs=-1, type=click.Path(path_type=Path, exists=False, dir_okay=True))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Eval directory (created if missing; a rerun into it resumes and pays nothing twice).",
)
@model_options(
    model_help="The model under test (local: a .gguf path).",
    base_url_help="OpenAI-compatible server of the model under test (vLLM, llama.cpp, Ollama...).",
)
@click.option(
    "--baseline",
    default=None,
    metavar="OTHER",
    help="A model to compare with, served by the same provider and base URL, or an earlier "
    "eval directory (its answers are reused; it must hold every probe of this eval).",
)
@click.option(
    "--specs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Spec files or folders the judge's rubrics come from (default: the starter library).",
)
@judge_options
@click.option(
    "--reverse/--no-reverse",
    default=True,
    show_default=True,
    help="Ask each choice item again with its options in reverse order, and count it right "
    "only when both answers are (cancels a preference for a position; doubles choice calls).",
)
@click.option(
    "--top-logprobs",
    type=click.IntRange(0, 20),
    default=10,
    show_default=True,
    help="Alternatives per answer token to ask for where the backend serves log-probabilities "
    "(0: score choice items from the chosen letter only).",
)
@click.option(
    "--max-tokens",
    "max_tokens",
    type=int,
    default=300,
    show_default=True,
    callback=positive,
    help="Longest answer to an open item.",
)
@click.option("--concurrency", type=int, default=8, show_default=True, callback=positive)
@budget_option
@prices_option
@timeout_option
def eval_command(
    probes: tuple[Path, ...],
    out: Path,
    model: ModelFlags,
    baseline: str | None,
    specs: tuple[Path, ...],
    judge: JudgeFlags,
    reverse: bool,
    top_logprobs: int,
    max_tokens: int,
    concurrency: int,
    budget: float | None,
    prices: Path | None,
    timeout: float,
) -> None:
    """Run probe items (PROBES: .jsonl files or folders; default: the shipped set) against a
    model and report per archetype and trait: choice accuracy with its interval, the share of
    answers showing each anti-marker and backfire behaviour, the judge's mean score on open
    items; with --baseline, the difference between the two models. Writes DIR/eval.json,
    DIR/answers.jsonl and DIR/eval.html."""
    from generator.evaluate import EvalOptions, evaluate
    from generator.report.eval_page import summary_lines

    if judge.escalate_model or judge.escalate_provider or judge.escalate_base_url:
        raise click.BadParameter(
            "eval reads each open answer once; drop the --judge-escalate-* options",
            param_hint="--judge-escalate-model",
        )
    config = model.config(timeout)
    baseline_dir, baseline_model = _baseline(baseline, config, out)
    options = EvalOptions(
        probe_paths=tuple(probes) or (probe_library_dir(),),
        out=out,
        model=config,
        baseline_model=baseline_model,
        baseline_dir=baseline_dir,
        judge=judge.judge(config, timeout),
        judge_mode=judge.mode,
        specs=tuple(spec_paths(specs)),
        reverse=reverse,
        top_logprobs=top_logprobs,
        open_max_tokens=max_tokens,
        concurrency=concurrency,
        budget=budget,
        prices_file=prices,
    )
    outcome = evaluate(options)
    for line in summary_lines(outcome.report, outcome.page):
        click.echo(line)
    if not outcome.complete:
        click.echo(
            "some answers never came (or never reached the judge): rerun the same command to finish"
        )
        raise SystemExit(EXIT_SHORT)


def _baseline(
    value: str | None, config: BackendConfig, out: Path
) -> tuple[Path | None, BackendConfig | None]:
    """An earlier eval directory, or a model on the same provider and server."""
    if value is None:
        return None, None
    path = Path(value)
    if path.is_dir():
        if path.resolve() == out.resolve():
            raise click.BadParameter(
                "the baseline cannot be the --out directory itself", param_hint="--baseline"
            )
        return path, None
    if value == config.model:
        raise click.BadParameter("the baseline is the model under test", param_hint="--baseline")
    return None, BackendConfig(
        provider=config.provider,
        model=value,
        base_url=config.base_url,
        fleet=config.fleet,
        timeout=config.timeout,
        chat_format=config.chat_format,
    )
