"""The `batch` command group: follow, collect or cancel the provider batches of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from generator.cli.options import prices_option


@click.group()
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
@prices_option
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
