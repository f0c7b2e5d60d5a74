"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.config import parse_settings
from cryopick.errors import CryopickError


def _remember_count(ctx: click.Context, _param, value):
    if value is not None:
        if not value > 0:
            raise click.BadParameter("must be a positive number of particles", ctx=ctx, param=_param)
        ctx.meta["cryopick.particles_per_micrograph"] = value
    return value


def picker_options(f):
    f = click.option("--particles-per-micrograph", type=float, default=None, expose_value=False,
                     callback=_remember_count, metavar="N",
                     help="Particles per micrograph, for pickers that need a count (topaz's pi). Default: "
                          "estimated from the labels (printed in the summary).")(f)
    f = click.option("--seed", type=int, default=0, show_default=True, help="Random seed (runs are deterministic).")(f)
    f = click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Picker setting, repeatable (e.g. --set preset=cpu --set epochs=5). "
                          "'cryopick plugins --verbose' lists pickers; unknown keys list the valid ones.")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when present), cpu, cuda or cuda:N.")(f)
    f = click.option("--diameter", help="Particle diameter: pixels (40) or Ångström (150A). "
                                        "Defaults to the value stored in the project.")(f)
    f = click.option("--picker", "-p", default="dog", show_default=True, help="Picker name (see cryopick plugins).")(f)
    return f


def project_option(required: bool = True, default: str | None = None):
    return click.option("--project", "-P", type=click.Path(path_type=Path), required=required and default is None,
                        default=default, help="Project store (HDF5 file).")


def threshold_options(f):
    f = click.option("--threshold-scope", type=click.Choice(["micrograph", "dataset"]),
                     help="Threshold each micrograph on its own or all together (default depends on the "
                          "thresholder: density and topk per micrograph).")(f)
    f = click.option("--threshold", help="NAME[:VALUE]: fixed:0.5, topk:100, otsu, density[:K]. "
                                         "Default: the picker's own.")(f)
    return f


def executor_options(f):
    """``--executor local|dask``, ``--scheduler``, ``--workers`` and ``--cluster``; the command receives one
    ``executor`` argument, a :class:`cryopick.executor.ExecutorOptions`."""

    def combine(ctx: click.Context, _param, value):
        from cryopick.executor import ExecutorOptions

        kind = ctx.params.pop("executor_kind", "local")
        scheduler = ctx.params.pop("scheduler", None)
        workers = ctx.params.pop("workers", None)
        return ExecutorOptions(kind, scheduler, workers, value)

    f = click.option("--cluster", "executor", type=click.Path(path_type=Path), callback=combine, metavar="FILE",
                     help="With --executor dask: Dask workers as batch jobs (SLURM, PBS, SGE, LSF; needs "
                          "dask-jobqueue), configured in a YAML file (docs/scaling.md).")(f)
    f = click.option("--workers", type=int, is_eager=True, metavar="N",
                     help="With --executor dask: a local Dask cluster of N worker processes (default: one "
                          "per CPU core).")(f)
    f = click.option("--scheduler", is_eager=True, metavar="tcp://HOST:PORT",
                     help="With --executor dask: a running Dask scheduler (workers need the same cryopick "
                          "plugins installed).")(f)
    f = click.option("--executor", "executor_kind", type=click.Choice(["local", "dask"]), default="local",
                     show_default=True, is_eager=True,
                     help="Where per-micrograph work (read, preprocess, score) runs: this process, or Dask "
                          "workers (pip install 'cryopick-core[distributed]'); training stays here.")(f)
    return f


class ManyValuesOption(click.Option):
    """An option that takes one or more values after one flag: ``--micrographs a.mrc b.mrc c.mrc`` (what an
    unquoted glob becomes in the shell) as well as ``--micrographs 'data/*.mrc'`` or a repeated flag. The
    values end at the next token that starts with ``-``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            one = option.process

            def process(value, state, one=one) -> None:
                one(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    one(state.rargs.pop(0), state)

            option.process = process


def micrographs_option(help: str = "Micrographs: a folder, a glob ('data/*.mrc') or files (several allowed).",
                       **kwargs):
    """``--micrographs/-m``: a folder, a quoted glob, or several files (an unquoted glob); the command
    receives a tuple of strings (empty when not given), for :func:`cryopick.io.micrographs.expand_micrographs`."""
    return click.option("--micrographs", "-m", cls=ManyValuesOption, metavar="PATH...", help=help, **kwargs)


def source_project_options(f):
    """``--relion-project DIR`` and ``--cryosparc-project DIR``: the folders that the paths in a RELION
    micrographs STAR / coordinate list or a cryoSPARC exposures ``.cs`` are relative to."""
    f = click.option("--cryosparc-project", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
                     help="cryoSPARC project folder that the paths in an exposures .cs (--micrographs) are "
                          "relative to. Default: the .cs file's folder or the nearest one above it.")(f)
    f = click.option("--relion-project", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
                     help="RELION project folder that the names in a micrographs STAR (--micrographs) and a "
                          "coordinate list (--labels autopick.star) are relative to. Default: the STAR's "
                          "folder or the nearest one above it.")(f)
    return f


def settings_dict(pairs) -> dict[str, str]:
    """``--set`` pairs as a dict, plus ``--particles-per-micrograph`` under its reserved key."""
    from cryopick.pickers.build import COUNT_KEY

    settings = parse_settings(pairs)
    ctx = click.get_current_context(silent=True)
    count = ctx.meta.get("cryopick.particles_per_micrograph") if ctx is not None else None
    if count is not None:
        settings[COUNT_KEY] = f"{count:g}"
    return settings


def emit(data, as_json: bool, text: str) -> None:
    import json

    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


__all__ = ["picker_options", "executor_options", "micrographs_option", "ManyValuesOption", "project_option", "threshold_options",
           "settings_dict", "emit", "CryopickError"]
