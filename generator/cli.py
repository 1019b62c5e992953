"""The `archetypes` command: a thin click group over the pipeline modules.

Every error the tool raises on purpose becomes one clean message on stderr and an exit code
(2 for input the user can fix); no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from generator import __version__, estimate, spec
from generator.backends.base import BackendConfig
from generator.errors import ArchetypeCorpusError, ConfigError, SpecError, UserError
from generator.gates import JudgeMode
from generator.gates.heuristics import CHECKS as HEURISTIC_CHECKS
from generator.plan import Task, coverage, default_count, plan
from generator.prompts import BriefStyle, character_brief, judge_rubric
from generator.resources import library_dir, templates_dir

EXIT_USER_ERROR = 2
# The run ended short of its target: attempts or budget ran out, tasks failed, or the gates
# starved it (one reason rejected nearly all of its first attempts: generator/run.py).
EXIT_SHORT = 3
EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """Maps the tool's errors to clean messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SpecError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            count = len(exc.problems)
            click.echo(f"error: {count} problem{'s' * (count != 1)} in archetype specs", err=True)
            ctx.exit(EXIT_USER_ERROR)
        except ArchetypeCorpusError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            # A bug, not a user error: one line by default, the traceback on request.
            if os.environ.get("ARCHETYPES_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with ARCHETYPES_DEBUG=1 for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="archetypes")
def cli() -> None:
    """Design positive AI archetypes and generate a checked corpus of documents they live in."""


def _spec_paths(paths: tuple[Path, ...]) -> list[Path]:
    return list(paths) if paths else [library_dir()]


_paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path, exists=False, dir_okay=True)
)


# ---------------------------------------------------------------------------------------------
# Authoring


@cli.command()
@_paths_argument
def validate(paths: tuple[Path, ...]) -> None:
    """Check archetype specs (files or folders; default: the starter library)."""
    for archetype in spec.load_specs(_spec_paths(paths)):
        click.echo(
            f"ok  {archetype.id} v{archetype.version}: {len(archetype.traits)} traits, "
            f"{len(archetype.genres)} genres, {len(archetype.settings)} settings, "
            f"{len(archetype.narrators)} narrators, {len(archetype.situations)} situations "
            f"({archetype.source})"
        )


@cli.command()
@click.argument("archetype_id")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder to write into (default: the starter library folder).",
)
def new(archetype_id: str, directory: Path | None) -> None:
    """Write a commented template spec for ARCHETYPE_ID to fill in."""
    import re

    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", archetype_id) or len(archetype_id) > 64:
        raise UserError(
            f"'{archetype_id}' is not a valid id: use lowercase letters, digits and single hyphens, "
            "e.g. patient-tutor"
        )
    folder = directory or library_dir()
    target = folder / f"{archetype_id}.yaml"
    if target.exists():
        raise UserError(f"{target} already exists; choose another id or edit that file")
    template = (templates_dir() / "new_spec.yaml.j2").read_text(encoding="utf-8")
    import jinja2

    text = jinja2.Template(template, keep_trailing_newline=True).render(
        id=archetype_id, name=archetype_id.replace("-", " ").title(), path=target
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UserError(f"{target} already exists; choose another id or edit that file") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {target}; fill it in, then run `archetypes validate {target}`")


@cli.command()
@click.argument("id_or_path")
@click.option(
    "--part",
    type=click.Choice(["both", "brief", "rubric"]),
    default="both",
    help="Print only the writer's brief or only the judge's rubric.",
)
@click.option(
    "--brief",
    "style",
    type=click.Choice(["full", "compact"]),
    default="full",
    show_default=True,
    help="Which brief: full (hosted models) or compact (what the local model is told).",
)
def show(id_or_path: str, part: str, style: BriefStyle) -> None:
    """Print what the writer model is told about an archetype, and the judge's rubric."""
    archetype = spec.load_spec(spec.resolve_spec_ref(id_or_path))
    if part in ("both", "brief"):
        if part == "both":
            click.echo("=" * 20 + " character brief: the writer model's system prompt " + "=" * 20)
        click.echo(character_brief(archetype, style))
    if part in ("both", "rubric"):
        if part == "both":
            click.echo("=" * 20 + " judge rubric: shown only to the judge model " + "=" * 20)
        click.echo(judge_rubric(archetype))


@cli.command(name="list")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of specs (default: the starter library).",
)
def list_archetypes(directory: Path | None) -> None:
    """One line per archetype in the library."""
    archetypes = spec.load_specs([directory or library_dir()])
    width = max(len(a.id) for a in archetypes)
    for a in archetypes:
        summary = " ".join(a.summary.split())
        if len(summary) > 90:
            summary = summary[:87].rstrip() + "..."
        click.echo(f"{a.id:<{width}}  v{a.version:<7} {len(a.traits)} traits  {summary}")


# ---------------------------------------------------------------------------------------------
# Planning


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter("must be at least 1")
    return value


_samples_option = click.option(
    "--samples-per-request",
    "samples",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Ideas per call (n) for OpenAI-compatible endpoints: groups of this many documents share "
    "their setting, people and situation and get their ideas from one call; an answer that "
    "nearly repeats an earlier one of its call is asked for again on its own.",
)


@cli.command(name="plan")
@_paths_argument
@click.option(
    "-n",
    "count",
    type=int,
    default=None,
    callback=_positive,
    help="Number of documents (default: the sum of the specs' targets.documents).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--provider", default="local", show_default=True, help="For the cost estimate.")
@click.option("--model", default=None, help="For the cost estimate (default: the provider's).")
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML price table overriding the shipped one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON lines.")
@click.option("--batch", "use_batch", is_flag=True, help="Estimate at the provider's batch price.")
@_samples_option
def plan_command(
    paths: tuple[Path, ...],
    count: int | None,
    seed: int,
    provider: str,
    model: str | None,
    prices: Path | None,
    as_json: bool,
    use_batch: bool,
    samples: int,
) -> None:
    """Expand archetypes into N deterministic tasks; print coverage and a cost estimate."""
    archetypes = spec.load_specs(_spec_paths(paths))
    n = count or default_count(archetypes)
    tasks = plan(archetypes, n, seed, samples)
    if as_json:
        for task in tasks:
            click.echo(task.model_dump_json())
        return
    _print_coverage(tasks)
    model_name = model or estimate.default_model(provider)
    est = estimate.estimate(
        tasks,
        {a.id: a for a in archetypes},
        model_name,
        provider,
        prices,
        batch=use_batch,
        style="compact" if provider == "local" else "full",
    )
    click.echo(est.describe())


def _print_coverage(tasks: list[Task]) -> None:
    for archetype_id, axes in coverage(tasks).items():
        total = sum(axes["trait_focus"].values())
        click.echo(f"{archetype_id}: {total} documents")
        for axis, counts in axes.items():
            cells = ", ".join(f"{value} {n}" for value, n in sorted(counts.items()))
            click.echo(f"  {axis:<12} {cells}")


# ---------------------------------------------------------------------------------------------
# Generation


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


_relax_option = click.option(
    "--relax",
    "relax",
    multiple=True,
    type=click.Choice(list(HEURISTIC_CHECKS)),
    help="Measure this heuristic check but do not enforce it (repeatable).",
)


def _judge_options(command: Any) -> Any:
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
    for option in reversed(options):
        command = option(command)
    return command


def _judge_config(
    writer: BackendConfig,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    timeout: float,
) -> BackendConfig | None:
    """The judge's backend, or None to use the writer's."""
    if provider is None and model is None and base_url is None:
        return None
    chosen = provider or ("openai" if base_url else writer.provider)
    # Inherit from the writer only what still points at the same service.
    same_service = chosen == writer.provider and base_url in (None, writer.base_url)
    return BackendConfig(
        provider=chosen,
        model=model or (writer.model if same_service else None),
        base_url=base_url or (writer.base_url if same_service else None),
        fleet=writer.fleet if same_service and model is None else (),
        timeout=timeout,
    )


def _escalate_config(
    judge: BackendConfig,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    timeout: float,
) -> BackendConfig | None:
    """The stronger judge's backend (--judge-escalate-*), or None when there is none."""
    if provider is None and model is None and base_url is None:
        return None
    if model is None and base_url is None:
        raise click.BadParameter(
            "name the stronger judge's model (or its server with --judge-escalate-base-url)",
            param_hint="--judge-escalate-model",
        )
    return BackendConfig(
        provider=provider or ("openai" if base_url else judge.provider),
        model=model,
        base_url=base_url,
        timeout=timeout,
    )


def _choose_provider(provider: str | None, base_urls: tuple[str, ...]) -> str:
    """Explicit flag first; a base URL means an OpenAI-compatible server; then whichever hosted
    provider has a key in the environment; else the embedded local model."""

    if provider:
        return provider
    if base_urls:
        return "openai"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    return "local"


@cli.command()
@_paths_argument
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
    callback=_positive,
    help="Accepted documents wanted (default: the sum of the specs' targets.documents).",
)
@click.option(
    "--provider",
    type=click.Choice(["local", "openai", "anthropic"]),
    default=None,
    help="Default: openai with --base-url or OPENAI_API_KEY, anthropic with "
    "ANTHROPIC_API_KEY, else the embedded local model.",
)
@click.option(
    "--model",
    default=None,
    help="Model name; for local, a path to a .gguf file (default: embedded SmolLM2).",
)
@click.option(
    "--base-url",
    "base_urls",
    multiple=True,
    help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama).",
)
@click.option(
    "--chat-format",
    default=None,
    help="Local GGUF models: llama-cpp-python's chat format (chatml, gemma, llama-3...); "
    "default: the file's own template.",
)
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
    callback=_positive,
    help="Requests in flight at once.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--budget",
    type=float,
    default=None,
    help="Stop before spending more than this many USD (estimated from prices and usage).",
)
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML price table overriding the shipped one.",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds before one request is abandoned and retried.",
)
@click.option(
    "--max-attempts",
    type=int,
    default=None,
    callback=_positive,
    help="Draw at most this many tasks in all, earlier sessions included (default: up to "
    "3N+10 per session, replacing rejects).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: on a terminal only; plain lines otherwise).",
)
@_judge_options
@_relax_option
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
    callback=_positive,
    help="K for a Kubernetes indexed job (the index comes from JOB_COMPLETION_INDEX).",
)
@_samples_option
def generate(
    paths: tuple[Path, ...],
    out: Path,
    count: int | None,
    provider: str | None,
    model: str | None,
    base_urls: tuple[str, ...],
    chat_format: str | None,
    brief: BriefStyle | None,
    concurrency: int,
    seed: int,
    budget: float | None,
    prices: Path | None,
    timeout: float,
    max_attempts: int | None,
    progress: bool | None,
    judge_provider: str | None,
    judge_model: str | None,
    judge_base_url: str | None,
    judge_mode: JudgeMode | None,
    judge_escalate_model: str | None,
    judge_escalate_provider: str | None,
    judge_escalate_base_url: str | None,
    relax: tuple[str, ...],
    dedup_against: tuple[Path, ...],
    use_batch: bool,
    shard: str | None,
    shard_count: int | None,
    samples: int,
) -> None:
    """Generate (or resume, or extend) a corpus run in --out."""
    from generator.run import RunOptions, run

    if budget is not None and budget <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--budget")
    archetypes = spec.load_specs(_spec_paths(paths))
    chosen = _choose_provider(provider, base_urls)
    if chat_format is not None and chosen != "local":
        raise click.BadParameter(
            "only for --provider local (a server applies its own template)",
            param_hint="--chat-format",
        )
    writer = BackendConfig(
        provider=chosen,
        model=model,
        base_url=base_urls[0] if base_urls else None,
        fleet=tuple(base_urls[1:]),
        timeout=timeout,
        chat_format=chat_format,
    )
    n = count or default_count(archetypes)
    sharding = _resolve_shard(shard, shard_count)
    if sharding is not None:
        index, shards = sharding
        # Shards take whole groups of tasks (a group shares one idea call): this shard's share
        # of the plan's first n tasks.
        n = sum(1 for i in range(n) if (i // samples) % shards == index)
        out = out / f"shard-{index:04d}-of-{shards:04d}"
        click.echo(f"shard {index} of {shards}: {n} documents into {out}")
    judge = _judge_config(writer, judge_provider, judge_model, judge_base_url, timeout)
    escalate = _escalate_config(
        judge or writer,
        judge_escalate_provider,
        judge_escalate_model,
        judge_escalate_base_url,
        timeout,
    )
    options = RunOptions(
        out=out,
        n=n,
        seed=seed,
        backend=writer,
        concurrency=concurrency,
        budget=budget,
        prices_file=prices,
        progress=progress,
        judge=judge,
        judge_mode=judge_mode,
        judge_escalate=escalate,
        relax=frozenset(relax),
        dedup_against=dedup_against,
        shard=sharding,
        batch=use_batch,
        samples=samples,
        brief=brief,
        max_attempts=max_attempts,
    )
    summary = run(archetypes, options)
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


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@_judge_options
@_relax_option
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
@click.option("--prices", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--timeout", type=float, default=600.0, show_default=True)
def check(
    run_dir: Path,
    judge_provider: str | None,
    judge_model: str | None,
    judge_base_url: str | None,
    judge_mode: JudgeMode | None,
    judge_escalate_model: str | None,
    judge_escalate_provider: str | None,
    judge_escalate_base_url: str | None,
    relax: tuple[str, ...],
    specs: tuple[Path, ...],
    apply: bool,
    prices: Path | None,
    timeout: float,
) -> None:
    """Run the gates again over an existing run, e.g. with a stronger judge."""
    from generator.recheck import run_check

    writer = _writer_from_manifest(run_dir)
    judge = _judge_config(writer, judge_provider, judge_model, judge_base_url, timeout) or writer
    escalate = _escalate_config(
        judge, judge_escalate_provider, judge_escalate_model, judge_escalate_base_url, timeout
    )
    summary = run_check(
        run_dir, judge, judge_mode, frozenset(relax), specs, apply, prices, escalate
    )
    reasons = ", ".join(f"{k} {v}" for k, v in summary.failed.most_common()) or "none"
    click.echo(
        f"checked {summary.checked} documents with judge {summary.judge_model or 'off'}: "
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
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{run_dir}: no readable manifest.json; is this a run directory?") from None
    return BackendConfig(
        provider=manifest["provider"], model=manifest["model"], base_url=manifest.get("base_url")
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


@cli.command()
@click.argument("labels", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--specs",
    "specs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Spec files or folders the labelled archetypes come from (default: the starter library).",
)
@_judge_options
@_relax_option
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
@click.option("--concurrency", type=int, default=8, show_default=True, callback=_positive)
@click.option("--prices", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--timeout", type=float, default=600.0, show_default=True)
def calibrate(
    labels: Path,
    specs: tuple[Path, ...],
    judge_provider: str | None,
    judge_model: str | None,
    judge_base_url: str | None,
    judge_mode: JudgeMode | None,
    judge_escalate_model: str | None,
    judge_escalate_provider: str | None,
    judge_escalate_base_url: str | None,
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
    from generator.calibrate import write_report

    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"the folder {out.parent} does not exist", param_hint="--out")
    if judge_mode == "advisory":
        raise click.BadParameter(
            "calibrate measures what the judge would reject: use enforce (the default) or off",
            param_hint="--judge",
        )
    chosen = _choose_provider(judge_provider, (judge_base_url,) if judge_base_url else ())
    if chosen == "openai" and not judge_model and not judge_base_url and judge_mode != "off":
        raise click.BadParameter(
            "name the judge's model, e.g. --judge-model gpt-4.1-mini", param_hint="--judge-model"
        )
    judge = BackendConfig(
        provider=chosen, model=judge_model, base_url=judge_base_url, timeout=timeout
    )
    escalate = _escalate_config(
        judge, judge_escalate_provider, judge_escalate_model, judge_escalate_base_url, timeout
    )
    report = asyncio.run(
        run_calibration(
            labels,
            list(specs) or [library_dir()],
            judge,
            "off" if judge_mode == "off" else "enforce",
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


@cli.command()
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
def merge(shard_dirs: tuple[Path, ...], out: Path) -> None:
    """Combine shard run directories (or a folder of shard-*-of-* folders) into one run."""
    from generator.merge import merge as merge_shards

    summary = merge_shards(shard_dirs, out)
    click.echo(
        f"merged {summary.shards} shards into {summary.out}: {summary.records} documents, "
        f"{summary.cross_shard_duplicates} near-duplicates across shards moved to rejects.jsonl"
    )


@cli.group()
def batch() -> None:
    """Follow, collect or cancel the provider batches of a `generate --batch` run."""


def _print_batches(infos: list[Any]) -> None:
    if not infos:
        click.echo("no batches in this run")
    for info in infos:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(info.request_counts.items()))
        state = "collected" if info.collected else info.status
        line = f"{info.id}  {info.provider}  {state:<12} {info.requests} requests  {counts}"
        # What collect found, by custom_id: unknown ids and duplicates show up here.
        if info.summary is not None:
            line += f"  | results: {info.summary.words() or 'none'}"
        click.echo(line)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        click.echo(f"note: {note}", err=True)


@batch.command(name="status")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def batch_status(run_dir: Path) -> None:
    """Each batch of the run, refreshed from the provider."""
    import asyncio

    from generator import batch as batches

    _print_notes(asyncio.run(batches.settle(run_dir)))
    _print_batches(asyncio.run(batches.status(run_dir)))


@batch.command(name="collect")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--prices", type=click.Path(path_type=Path, dir_okay=False), default=None)
def batch_collect(run_dir: Path, prices: Path | None) -> None:
    """Download the results of every finished batch into the run's cache."""
    import asyncio

    from generator import batch as batches

    _print_notes(asyncio.run(batches.settle(run_dir)))
    summary = asyncio.run(batches.collect(run_dir, prices_file=prices))
    click.echo(summary.line())
    if (warning := summary.warning()) is not None:
        click.echo(f"warning: {warning}", err=True)
    click.echo("rerun the same `archetypes generate ... --batch` command to continue the run")


@batch.command(name="cancel")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def batch_cancel(run_dir: Path) -> None:
    """Cancel every batch still running (finished results are still collected)."""
    import asyncio

    from generator import batch as batches

    _print_notes(asyncio.run(batches.settle(run_dir)))
    _print_batches(asyncio.run(batches.cancel(run_dir)))


@cli.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
@click.option("--no-embeddings", is_flag=True, help="Skip the embedding-based spread (faster).")
def report(run_dir: Path, open_page: bool, no_embeddings: bool) -> None:
    """Write DIR/report/index.html: coverage, judge scores, rejections, diversity, samples."""
    from generator.report import build_report

    result = build_report(run_dir, embeddings=not no_embeddings)
    for line in result.lines:
        click.echo(line)
    if open_page:
        import webbrowser

        webbrowser.open(result.path.resolve().as_uri())


@cli.command(name="sample")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-n",
    "count",
    type=int,
    required=True,
    callback=_positive,
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


# ---------------------------------------------------------------------------------------------
# Dataset and publishing


_run_dir_argument = click.argument(
    "run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False)
)


@cli.command(name="build")
@_run_dir_argument
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="NAME=FRACTION",
    help="Hold out a split by a stable hash of the document id, e.g. validation=0.05 "
    "(repeatable; train gets the rest).",
)
@click.option(
    "--tokenizer",
    default="o200k_base",
    show_default=True,
    help="For n_tokens and the card: o200k_base, cl100k_base, or a path to a tokenizer.json.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["parquet", "jsonl"]),
    help="Also write DIR/dataset/jsonl/<split>.jsonl (parquet is always written).",
)
@click.option(
    "--shard-rows",
    type=int,
    default=50_000,
    show_default=True,
    callback=_positive,
    help="Rows per parquet shard at most.",
)
@click.option(
    "--license",
    "license_id",
    default="cc-by-4.0",
    show_default=True,
    help="License id for the dataset card (the Hub's ids, e.g. apache-2.0).",
)
def build_command(
    run_dir: Path,
    splits: tuple[str, ...],
    tokenizer: str,
    formats: tuple[str, ...],
    shard_rows: int,
    license_id: str,
) -> None:
    """Build DIR/dataset/: parquet shards and a dataset card, ready to publish."""
    from generator import dataset

    result = dataset.build(
        run_dir,
        dataset.BuildOptions(
            splits=dataset.parse_splits(splits),
            tokenizer=tokenizer,
            formats=tuple(dict.fromkeys(("parquet", *formats))),
            shard_rows=shard_rows,
            license=license_id,
        ),
    )
    for line in dataset.describe(result):
        click.echo(line)


@cli.command(name="publish")
@_run_dir_argument
@click.option(
    "--repo-id",
    required=True,
    metavar="OWNER/NAME",
    help="Dataset repository on the Hugging Face Hub (created if missing).",
)
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option(
    "--revision",
    default=None,
    metavar="BRANCH",
    help="Branch to commit to (created if missing; default: main).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be uploaded and print the card; no network, no token.",
)
@click.option("--message", default=None, help="Commit message.")
@click.option(
    "--allow-unjudged",
    is_flag=True,
    help="Publish even though no enforcing judge checked the documents (judge off or "
    "advisory, or the embedded model judged); the dataset card says so.",
)
def publish_command(
    run_dir: Path,
    repo_id: str,
    private: bool,
    revision: str | None,
    dry_run: bool,
    message: str | None,
    allow_unjudged: bool,
) -> None:
    """Upload DIR/dataset/ to the Hugging Face Hub as a dataset.

    Only files that differ from the Hub's are sent, in commits of at most 50 files (a run that
    fails part-way resumes where it stopped).

    A corpus no enforcing judge checked is refused unless --allow-unjudged. The token comes
    from HF_TOKEN or `hf auth login`; HF_ENDPOINT selects another Hub.
    """
    from generator import publish

    if dry_run:
        for line in publish.dry_run(run_dir, repo_id, revision, allow_unjudged=allow_unjudged):
            click.echo(line)
        return
    result = publish.publish(
        run_dir,
        repo_id,
        private=private,
        revision=revision,
        message=message,
        allow_unjudged=allow_unjudged,
    )
    for line in result.describe():
        click.echo(line)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="archetypes")
    except KeyboardInterrupt:  # pragma: no cover - raised outside a command's invoke
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
