"""Authoring commands: new, validate, show and list archetype specs, and plan a corpus."""

from __future__ import annotations

import re
from pathlib import Path

import click

from generator import estimate, spec
from generator.cli.options import (
    paths_argument,
    positive,
    prices_option,
    samples_option,
    spec_paths,
)
from generator.errors import UserError
from generator.plan import Task, coverage, default_count, plan
from generator.prompts import BriefStyle, character_brief, judge_rubric
from generator.resources import library_dir, templates_dir


@click.command()
@paths_argument
def validate(paths: tuple[Path, ...]) -> None:
    """Check archetype specs (files or folders; default: the starter library)."""
    for archetype in spec.load_specs(spec_paths(paths)):
        click.echo(
            f"ok  {archetype.id} v{archetype.version}: {len(archetype.traits)} traits, "
            f"{len(archetype.genres)} genres, {len(archetype.settings)} settings, "
            f"{len(archetype.narrators)} narrators, {len(archetype.situations)} situations "
            f"({archetype.source})"
        )


@click.command()
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


@click.command()
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


@click.command(name="list")
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


@click.command(name="plan")
@paths_argument
@click.option(
    "-n",
    "count",
    type=int,
    default=None,
    callback=positive,
    help="Number of documents (default: the sum of the specs' targets.documents).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--provider", default="local", show_default=True, help="For the cost estimate.")
@click.option("--model", default=None, help="For the cost estimate (default: the provider's).")
@prices_option
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON lines.")
@click.option("--batch", "use_batch", is_flag=True, help="Estimate at the provider's batch price.")
@samples_option
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
    archetypes = spec.load_specs(spec_paths(paths))
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
