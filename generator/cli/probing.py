"""Probe commands: write held-out evaluation items for each trait with a model (`probes`), and
import published ones from local files (`import-probes`)."""

from __future__ import annotations

from pathlib import Path

import click

from generator import spec
from generator.cli.exits import EXIT_SHORT
from generator.cli.options import (
    budget_option,
    model_options,
    paths_argument,
    positive,
    prices_option,
    spec_paths,
    timeout_option,
)
from generator.cli.providers import ModelFlags


@click.command("probes")
@paths_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Probes file to write (.jsonl); the answers paid for are kept in OUT.cache/ beside it, "
    "so a rerun resumes and pays for nothing twice.",
)
@click.option(
    "-n",
    "per_trait",
    type=int,
    default=2,
    show_default=True,
    callback=positive,
    help="Items of each kind (choice and open) per trait.",
)
@model_options()
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    callback=positive,
    help="Traits written at once.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@budget_option
@prices_option
@timeout_option
@click.option(
    "--max-reasks",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Times an unusable answer is asked for again before its slot counts as failed.",
)
def probes_command(
    paths: tuple[Path, ...],
    out: Path,
    per_trait: int,
    model: ModelFlags,
    concurrency: int,
    seed: int,
    budget: float | None,
    prices: Path | None,
    timeout: float,
    max_reasks: int,
) -> None:
    """Write held-out probe items (choice and open) for each trait of each archetype."""
    from generator.probe_writer import ProbeJob, write_probe_set

    job = ProbeJob(
        out=out,
        per_trait=per_trait,
        backend=model.config(timeout),
        concurrency=concurrency,
        seed=seed,
        budget=budget,
        prices_file=prices,
        max_reasks=max_reasks,
    )
    summary = write_probe_set(spec.load_specs(spec_paths(paths)), job)
    click.echo(
        f"wrote {summary.written} of {summary.asked} probes to {out}; failed {summary.failed} "
        f"(no usable answer after {max_reasks} re-asks), duplicates dropped "
        f"{summary.duplicates}; model calls {summary.model_calls}, cache hits "
        f"{summary.cache_hits}, cost ${summary.cost_usd:.4f}; answers cached in "
        f"{summary.cache_dir}"
    )
    if summary.stopped:
        click.echo(f"stopped early: {summary.stopped}")
    if summary.written < summary.asked:
        click.echo("short of the items asked for: rerun to retry only the missing ones", err=True)
        raise SystemExit(EXIT_SHORT)


@click.command("import-probes")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Probes file to write (.jsonl).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="SUBSET=ARCHETYPE/TRAIT[:good|bad][:FLAG|anti-N]",
    help="Send a subset's lines to a trait (repeatable): good if the matching answer shows the "
    "trait, bad if it is the failure; the failure option shows FLAG (a backfire flag) or the "
    "trait's N-th anti-marker. Overrides the shipped mapping (see --mapping).",
)
@click.option(
    "--specs",
    "spec_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Spec files or folders the traits come from (default: the starter library).",
)
@click.option("--mapping", "show_mapping", is_flag=True, help="Print the shipped mapping and exit.")
def import_probes_command(
    files: tuple[Path, ...],
    out: Path | None,
    maps: tuple[str, ...],
    spec_files: tuple[Path, ...],
    show_mapping: bool,
) -> None:
    """Import Anthropic model-written-evals JSONL files (persona and advanced-ai-risk subsets)
    from local copies as choice items."""
    from generator.probe_import import describe_mapping, import_probes, parse_maps

    if show_mapping:
        for line in describe_mapping():
            click.echo(line)
        return
    if not files or out is None:
        raise click.UsageError("give one or more FILEs and --out (or --mapping)")
    archetypes = spec.load_specs(spec_paths(spec_files))
    result = import_probes(files, archetypes, parse_maps(maps), out)
    for found in result.files:
        target = found.target
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(found.skipped.items()))
        click.echo(
            f"{found.path}: {found.subset} -> {target.archetype_id}/{target.trait_id} "
            f"(matching answer is {target.direction}): {len(found.probes)} items"
            + (f"; skipped {skipped}" if skipped else "")
        )
    click.echo(
        f"wrote {len(result.kept)} probes to {out}; {len(result.duplicates)} duplicates dropped"
    )
    if not result.kept:
        raise SystemExit(EXIT_SHORT)
