"""Quality commands: check a run's gates again, calibrate the judge, sample for labelling, and
report on a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from generator.backends.base import BackendConfig
from generator.cli.options import (
    judge_options,
    positive,
    prices_option,
    relax_option,
    timeout_option,
)
from generator.cli.providers import JudgeFlags, choose_provider
from generator.cli.scale import IN_PROCESS, executor_options, options_from
from generator.errors import UserError
from generator.resources import library_dir
from generator.rundir import read_run

if TYPE_CHECKING:
    from generator.recheck import CheckSummary


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@judge_options
@relax_option
@click.option(
    "--specs",
    "specs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Spec files or folders (default: the ones recorded in the run's manifest).",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Move documents that now fail to rejects.jsonl (default: only report).",
)
@prices_option
@timeout_option
@executor_options(extra=(IN_PROCESS,), default=IN_PROCESS)
def check(
    run_dir: Path,
    judge: JudgeFlags,
    relax: tuple[str, ...],
    specs: tuple[Path, ...],
    apply: bool,
    prices: Path | None,
    timeout: float,
    **executor: Any,
) -> None:
    """Run the gates again over an existing run, e.g. with a stronger judge.

    With --judge off and --executor local, slurm or ray, the offline gates that judge a document
    on its own (tropes, truncation, heuristics, screen) run as a datatrove pipeline cut into
    tasks, reading the records streaming: for corpora too big for one process. Near-duplicates
    are not checked on that path (`archetypes dedup RUN` removes them), and the judge runs
    only in process.
    """
    from generator.recheck import check_on_executor, run_check

    kind = executor["executor"]
    if kind != IN_PROCESS:
        if judge.mode != "off":
            raise UserError(
                f"the judge runs only in process: drop --executor {kind}, or pass --judge off "
                "to run the offline gates on the executor"
            )
        options = options_from(executor)
        summary = check_on_executor(run_dir, options, frozenset(relax), specs, apply)
        where = f" on the {kind} executor, near-duplicates not checked (`archetypes dedup`)"
        _echo_check(summary, where)
        return
    _refuse_resources(executor)
    writer = _writer_from_manifest(run_dir)
    judge_backend = judge.judge(writer, timeout) or writer
    escalate = judge.escalate(judge_backend, timeout)
    summary = run_check(
        run_dir, judge_backend, judge.mode, frozenset(relax), specs, apply, prices, escalate
    )
    _echo_check(summary, "")


def _refuse_resources(executor: dict[str, Any]) -> None:
    """The executor's resource flags (--workers, --partition...) mean nothing in process."""
    context = click.get_current_context()
    for param in context.command.params:
        if param.name not in executor or param.name == "executor":
            continue
        if context.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT):
            raise UserError(
                f"{param.opts[0]} is an executor setting: add --judge off --executor local (or "
                "slurm, ray) to run the check as a datatrove pipeline, or drop it"
            )


def _echo_check(summary: CheckSummary, where: str) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary.failed.most_common()) or "none"
    click.echo(
        f"checked {summary.checked} documents with judge {summary.judge_model or 'off'}{where}: "
        f"{summary.passed} pass, {summary.checked - summary.passed} fail ({reasons})"
    )
    for line in _judge_passes_lines(summary.judge_passes):
        click.echo(line)
    click.echo(f"verdicts: {summary.report}")
    if summary.checked != summary.passed:
        click.echo(
            "records.jsonl updated; failing documents moved to rejects.jsonl"
            if summary.applied
            else "nothing changed; rerun with --apply to drop the failing documents"
        )


def _writer_from_manifest(run_dir: Path) -> BackendConfig:
    manifest = read_run(run_dir).read_manifest()
    if manifest is None or manifest.provider is None:
        raise UserError(f"{run_dir}: no readable manifest.json; is this a run directory?")
    return BackendConfig(
        provider=manifest.provider, model=manifest.model, base_url=manifest.base_url
    )


def _judge_passes_lines(passes: dict[str, Any]) -> list[str]:
    """What the judge's second readings and the stronger judge took, when they took anything."""
    reordered = passes.get("order_control") or {}
    escalated = passes.get("escalation") or {}
    if not reordered.get("calls") and not escalated.get("calls"):
        return []
    line = (
        f"judge passes: {reordered.get('documents', 0)} documents read again in another rubric "
        f"order (${reordered.get('cost_usd', 0.0):.4f})"
    )
    if escalated.get("model"):
        line += (
            f"; {escalated.get('documents', 0)} escalated to {escalated['model']} "
            f"(${escalated.get('cost_usd', 0.0):.4f})"
        )
    return [line]


@click.command()
@click.argument("labels", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--specs",
    "specs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Spec files or folders the labelled archetypes come from (default: the starter library).",
)
@judge_options
@relax_option
@click.option(
    "--permutations",
    type=click.IntRange(0, 20),
    default=1,
    show_default=True,
    metavar="K",
    help="Judge every judged document again with the rubric in K other orders and report how "
    "often the verdict flips (each costs a judge call per document).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the report as JSON; RUN/calibration.json puts it on the run's dataset card.",
)
@click.option("--concurrency", type=int, default=8, show_default=True, callback=positive)
@prices_option
@timeout_option
def calibrate(
    labels: Path,
    specs: tuple[Path, ...],
    judge: JudgeFlags,
    relax: tuple[str, ...],
    permutations: int,
    out: Path | None,
    concurrency: int,
    prices: Path | None,
    timeout: float,
) -> None:
    """Run the gate stack, judge included, over hand-labelled documents (LABELS, one JSON object
    per line) and report how far it agrees: confusion matrix, backfire recall, good documents
    kept, Cohen's kappa, and how often the judge's verdict flips when the rubric is reordered."""
    import asyncio

    from generator.calibrate import calibrate as run_calibration
    from generator.calibration_report import write_report

    judge_backend, escalate = _calibration_judges(judge, out, timeout)
    report = asyncio.run(
        run_calibration(
            labels,
            list(specs) or [library_dir()],
            judge_backend,
            "off" if judge.mode == "off" else "enforce",
            escalate,
            frozenset(relax),
            permutations,
            prices,
            concurrency,
        )
    )
    if out is not None:
        write_report(out, report)
    for line in report.describe():
        click.echo(line)
    if out is not None:
        click.echo(f"report: {out}")


def _calibration_judges(
    judge: JudgeFlags, out: Path | None, timeout: float
) -> tuple[BackendConfig, BackendConfig | None]:
    """The judge and stronger judge to calibrate, once the flags are known to fit together."""
    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"the folder {out.parent} does not exist", param_hint="--out")
    if judge.mode == "advisory":
        raise click.BadParameter(
            "calibrate measures what the judge would reject: use enforce (the default) or off",
            param_hint="--judge",
        )
    chosen = choose_provider(judge.provider, (judge.base_url,) if judge.base_url else ())
    if chosen == "openai" and not judge.model and not judge.base_url and judge.mode != "off":
        raise click.BadParameter(
            "name the judge's model, e.g. --judge-model gpt-4.1-mini", param_hint="--judge-model"
        )
    backend = BackendConfig(
        provider=chosen, model=judge.model, base_url=judge.base_url, timeout=timeout
    )
    return backend, judge.escalate(backend, timeout)


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
@click.option("--no-embeddings", is_flag=True, help="Skip the embedding-based spread (faster).")
def report(run_dir: Path, open_page: bool, no_embeddings: bool) -> None:
    """Write DIR/report/index.html: coverage, judge scores, rejections, diversity, samples.
    On an eval directory (`archetypes eval --out DIR`), write DIR/eval.html again."""
    from generator.eval_report import is_eval_dir
    from generator.report import build_report
    from generator.report.eval_page import write_eval_page

    result = (
        write_eval_page(run_dir)
        if is_eval_dir(run_dir)
        else build_report(run_dir, embeddings=not no_embeddings)
    )
    for line in result.lines:
        click.echo(line)
    if open_page:
        import webbrowser

        webbrowser.open(result.path.resolve().as_uri())


@click.command(name="sample")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-n",
    "count",
    type=int,
    required=True,
    callback=positive,
    help="Documents to sample (fewer if the run has fewer).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSONL file to write, in the labelled format `archetypes calibrate` reads.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def sample_command(run_dir: Path, count: int, out: Path, seed: int) -> None:
    """Write documents of RUN to label by hand: kept and rejected ones, stratified by gate
    outcome, reject reason, archetype and genre, with `label` and `reason` left empty."""
    from generator.sample import sample_run

    for line in sample_run(run_dir, count, out, seed).describe():
        click.echo(line)
