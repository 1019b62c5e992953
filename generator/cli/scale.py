"""Corpus-wide commands on datatrove: `archetypes dedup RUN` (near-duplicates across a whole run,
removed in place), and the executor options they share with `merge`: where the pipeline runs
(this machine's processes, a Slurm cluster, a Ray cluster) and with what resources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from generator.cli.options import positive

if TYPE_CHECKING:
    from generator.scale.dedup import DedupSummary
    from generator.scale.executors import ExecutorOptions

EXECUTOR_CHOICES = ("local", "slurm", "ray")
IN_PROCESS = "in-process"


# The options after --executor: how many tasks, and the resources Slurm and Ray reserve.
_RESOURCE_OPTIONS = [
    click.option(
        "--workers",
        type=int,
        callback=positive,
        help="Tasks at once: processes here (default 1), or array / Ray tasks (default: no limit).",
    ),
    click.option(
        "--tasks",
        type=int,
        callback=positive,
        help="Pieces the input is cut into (default: --workers here, 64 on a cluster). "
        "More pieces: less to redo after a kill, more files.",
    ),
    click.option("--partition", help="Slurm: the partition (required with slurm)."),
    click.option("--time", default="24:00:00", show_default=True, help="Slurm: time limit."),
    click.option(
        "--cpus-per-task",
        type=int,
        default=1,
        show_default=True,
        callback=positive,
        help="Slurm / Ray: CPUs each task reserves.",
    ),
    click.option(
        "--mem-per-cpu-gb",
        type=int,
        default=2,
        show_default=True,
        callback=positive,
        help="Slurm / Ray: memory per CPU, in GB.",
    ),
    click.option("--qos", help="Slurm: quality of service."),
    click.option(
        "--sbatch-arg",
        "sbatch_args",
        multiple=True,
        metavar="KEY=VALUE",
        help="Slurm: another sbatch option, e.g. account=myproj (repeatable).",
    ),
    click.option(
        "--env-command",
        help="Slurm: the shell line that sets up the environment on a node (default: "
        "activate this virtual environment).",
    ),
    click.option(
        "--job-name", default="archetypes", show_default=True, help="Slurm: job name prefix."
    ),
    click.option("--ray-address", help="Ray: the cluster's address (default: start one here)."),
]


def executor_options(extra: tuple[str, ...] = (), default: str = "local") -> Callable[[Any], Any]:
    """The click options of a corpus-wide pass; `extra` adds choices to --executor (merge's
    `in-process`), `default` is the one without the flag. The command receives them as keyword
    arguments for `options_from`."""
    executor = click.option(
        "--executor",
        type=click.Choice((*EXECUTOR_CHOICES, *extra)),
        default=default,
        show_default=True,
        help="Where the datatrove pipeline runs: this machine's processes, Slurm array jobs "
        "(submitted with sbatch), or a Ray cluster (needs the `ray` extra).",
    )

    def decorate(command: Any) -> Any:
        for option in reversed([executor, *_RESOURCE_OPTIONS]):
            command = option(command)
        return command

    return decorate


def options_from(values: dict[str, Any]) -> ExecutorOptions:
    """The ExecutorOptions of a command's executor flags (see `executor_options`)."""
    from generator.scale.executors import ExecutorOptions

    pairs = []
    for item in values["sbatch_args"]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--sbatch-arg")
        pairs.append((key.strip().removeprefix("--"), value.strip()))
    return ExecutorOptions(
        kind=values["executor"],
        workers=values["workers"],
        tasks=values["tasks"],
        partition=values["partition"],
        time=values["time"],
        cpus_per_task=values["cpus_per_task"],
        mem_per_cpu_gb=values["mem_per_cpu_gb"],
        qos=values["qos"],
        sbatch_args=tuple(pairs),
        env_command=values["env_command"],
        job_name=values["job_name"],
        ray_address=values["ray_address"],
    )


def echo_pending(status: str, what: str, work: Path | None, jobs: tuple[str, ...]) -> None:
    """What to do while a pass's Slurm jobs are queued or running."""
    ids = ", ".join(jobs) or "none"
    if status == "submitted":
        click.echo(
            f"submitted the {what} to Slurm (jobs {ids}; logs in {work}/logs). When the jobs "
            "have finished, run the same command again to put the result in."
        )
    else:
        click.echo(
            f"the {what}'s Slurm jobs ({ids}) are still queued or running (squeue -j {ids}); "
            "run the same command again once they have finished."
        )


@click.command("dedup")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
@executor_options()
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would run (each stage's Slurm batch script, or its settings) and stop.",
)
def dedup_command(run_dir: Path, dry_run: bool, **executor: Any) -> None:
    """Remove near-duplicates across a whole run, in place, as a datatrove MinHash pipeline.

    The same test as the in-run gate (5-word shingles, estimated similarity >= 0.7, the earlier
    document in plan order kept); removed documents move to rejects.jsonl with the id they
    duplicate. A killed pass continues where it stopped when run again.
    """
    from generator.scale.dedup import dedup_run, describe_run

    options = options_from(executor)
    if dry_run:
        for stage in describe_run(run_dir, options):
            click.echo(json.dumps(stage, indent=2, default=str))
        return
    options.require_runtime()
    summary = dedup_run(run_dir, options)
    _echo_summary(run_dir, summary, options)


def _echo_summary(run_dir: Path, summary: DedupSummary, options: ExecutorOptions) -> None:
    if summary.status != "done":
        echo_pending(summary.status, "dedup pass", summary.work, summary.jobs)
        return
    click.echo(
        f"{run_dir}: {summary.records} documents kept, {summary.removed} near-duplicates moved "
        f"to rejects.jsonl ({options.kind} executor)"
    )
