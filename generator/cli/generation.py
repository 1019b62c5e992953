"""Generation commands: generate (or resume, extend, shard) a run, and merge shard runs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from generator import spec
from generator.cli.exits import EXIT_INTERRUPTED, EXIT_SHORT, EXIT_USER_ERROR
from generator.cli.options import (
    budget_option,
    judge_options,
    model_options,
    paths_argument,
    positive,
    prices_option,
    relax_option,
    samples_option,
    spec_paths,
    timeout_option,
)
from generator.cli.providers import JudgeFlags, ModelFlags
from generator.cli.scale import IN_PROCESS, echo_pending, executor_options, options_from
from generator.errors import ConfigError
from generator.gates import JudgeMode
from generator.plan import default_count
from generator.prompts import BriefStyle

if TYPE_CHECKING:
    from generator.run import RunSummary


def _resolve_shard(flag: str | None, count: int | None) -> tuple[int, int] | None:
    """(index, count) from --shard I/K, a Slurm array job, or a Kubernetes indexed job."""
    if flag is not None:
        match = re.fullmatch(r"(\d+)/(\d+)", flag)
        if not match or not 0 <= int(match[1]) < int(match[2]):
            raise click.BadParameter("expected I/K with 0 <= I < K, e.g. 3/8", param_hint="--shard")
        return int(match[1]), int(match[2])
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        total = int(env["SLURM_ARRAY_TASK_COUNT"])
        if not 0 <= index < total:
            raise ConfigError(
                f"SLURM_ARRAY_TASK_ID gives shard {index} of {total}: "
                f"use --array=0-{total - 1} or pass --shard I/K"
            )
        return index, total
    if "JOB_COMPLETION_INDEX" in env:
        if count is None:
            raise ConfigError(
                "JOB_COMPLETION_INDEX is set: pass --shard-count K (the job's completions)"
            )
        index = int(env["JOB_COMPLETION_INDEX"])
        if not 0 <= index < count:
            raise ConfigError(f"JOB_COMPLETION_INDEX={index} is not below --shard-count {count}")
        return index, count
    if count is not None:
        raise ConfigError(
            "--shard-count needs JOB_COMPLETION_INDEX (a Kubernetes indexed job); otherwise use --shard I/K"
        )
    return None


@click.command()
@paths_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Run directory (created if missing; an existing run is resumed or extended).",
)
@click.option(
    "-n",
    "count",
    type=int,
    default=None,
    callback=positive,
    help="Accepted documents wanted (default: the sum of the specs' targets.documents).",
)
@model_options()
@click.option(
    "--brief",
    type=click.Choice(["full", "compact"]),
    default=None,
    help="How much of the archetype the writer is told (default: compact for the local "
    "model, full otherwise).",
)
@click.option(
    "--concurrency",
    type=int,
    default=8,
    show_default=True,
    callback=positive,
    help="Requests in flight at once.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@budget_option
@prices_option
@timeout_option
@click.option(
    "--max-attempts",
    type=int,
    default=None,
    callback=positive,
    help="Draw at most this many tasks in all, earlier sessions included (default: up to "
    "3N+10 per session, replacing rejects).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: on a terminal only; plain lines otherwise).",
)
@judge_options
@relax_option
@click.option(
    "--dedup-against",
    "dedup_against",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Earlier run folder, records.jsonl or folder of parquet files not to repeat.",
)
@click.option(
    "--batch",
    "use_batch",
    is_flag=True,
    help="Send the calls through the provider's batch API (half price, results within 24 h); "
    "see `archetypes batch`.",
)
@click.option(
    "--shard",
    default=None,
    metavar="I/K",
    help="Run shard I of K (0-based) into DIR/shard-I-of-K; default: from SLURM_ARRAY_TASK_ID and "
    "SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --shard-count.",
)
@click.option(
    "--shard-count",
    type=int,
    default=None,
    callback=positive,
    help="K for a Kubernetes indexed job (the index comes from JOB_COMPLETION_INDEX).",
)
@samples_option
def generate(
    paths: tuple[Path, ...],
    out: Path,
    count: int | None,
    model: ModelFlags,
    brief: BriefStyle | None,
    concurrency: int,
    seed: int,
    budget: float | None,
    prices: Path | None,
    timeout: float,
    max_attempts: int | None,
    progress: bool | None,
    judge: JudgeFlags,
    relax: tuple[str, ...],
    dedup_against: tuple[Path, ...],
    use_batch: bool,
    shard: str | None,
    shard_count: int | None,
    samples: int,
) -> None:
    """Generate (or resume, or extend) a corpus run in --out."""
    from generator.run import RunOptions, run

    # Every flag is checked before any spec, model or run directory is opened.
    writer = model.config(timeout)
    judge_backend = judge.judge(writer, timeout)
    escalate = judge.escalate(judge_backend or writer, timeout)
    sharding = _resolve_shard(shard, shard_count)
    archetypes = spec.load_specs(spec_paths(paths))
    n = count or default_count(archetypes)
    if sharding is not None:
        n, out = _shard_share(n, out, samples, sharding)
    options = RunOptions(
        out=out,
        n=n,
        seed=seed,
        backend=writer,
        concurrency=concurrency,
        budget=budget,
        prices_file=prices,
        progress=progress,
        judge=judge_backend,
        judge_mode=judge.mode,
        judge_escalate=escalate,
        relax=frozenset(relax),
        dedup_against=dedup_against,
        shard=sharding,
        batch=use_batch,
        samples=samples,
        brief=brief,
        max_attempts=max_attempts,
    )
    _finish(run(archetypes, options), relax, judge.mode)


def _shard_share(n: int, out: Path, samples: int, sharding: tuple[int, int]) -> tuple[int, Path]:
    """This shard's number of documents and run directory."""
    index, shards = sharding
    # Shards take whole groups of tasks (a group shares one idea call): this shard's share
    # of the plan's first n tasks.
    n = sum(1 for i in range(n) if (i // samples) % shards == index)
    out = out / f"shard-{index:04d}-of-{shards:04d}"
    click.echo(f"shard {index} of {shards}: {n} documents into {out}")
    return n, out


def _finish(summary: RunSummary, relax: tuple[str, ...], judge_mode: JudgeMode | None) -> None:
    """Say how the run went, and exit with the code for how it ended."""
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejected.items())) or "none"
    click.echo(
        f"accepted {summary.accepted}/{summary.target}; rejected: {rejected}; "
        f"model calls {summary.model_calls}, cache hits {summary.cache_hits}, "
        f"cost ${summary.cost_usd:.4f}"
    )
    unenforced = [f"--relax {name}" for name in sorted(relax)]
    if judge_mode in ("off", "advisory"):
        unenforced.append(f"--judge {judge_mode}")
    if unenforced:
        # Said on screen as in the manifest and the card: what this corpus was not held to.
        click.echo(f"not enforced in this run: {', '.join(unenforced)}")
    # Last, so that the line saying how the run ended (and what to try) is the one left on screen.
    click.echo(summary.message)
    if summary.status == "interrupted":
        raise SystemExit(EXIT_INTERRUPTED)
    if summary.status == "failed":
        raise SystemExit(EXIT_USER_ERROR)
    if summary.status in ("incomplete", "budget", "starved"):
        raise SystemExit(EXIT_SHORT)


@click.command()
@click.argument(
    "shard_dirs",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="New run directory for the merged run.",
)
@executor_options(extra=(IN_PROCESS,))
def merge(shard_dirs: tuple[Path, ...], out: Path, **executor: Any) -> None:
    """Combine shard run directories (or a folder of shard-*-of-* folders) into one run.

    Near-duplicates across shards are removed by the corpus-wide datatrove pass (--executor,
    --workers; `in-process` is the single-process index, for small runs).
    """
    from generator.merge import merge as merge_shards

    options = None if executor["executor"] == IN_PROCESS else options_from(executor)
    if options is not None:
        options.require_runtime()
    summary = merge_shards(shard_dirs, out, options)
    if summary.pending:
        echo_pending(summary.pending, "merge's dedup pass", out / "work" / "dedup", summary.jobs)
        return
    click.echo(
        f"merged {summary.shards} shards into {summary.out}: {summary.records} documents, "
        f"{summary.cross_shard_duplicates} near-duplicates across shards moved to rejects.jsonl"
    )
