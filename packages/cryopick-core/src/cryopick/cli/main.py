"""The ``cryopick`` command group.

Examples::

    cryopick run --picker dog                # the built-in demo, with precision/recall
    cryopick plugins --verbose
    cryopick run --picker topaz --micrographs 'data/*.mrc' --labels train.star --diameter 150A
"""

from __future__ import annotations

import sys

import click

from cryopick import __version__, progress
from cryopick.errors import CryopickError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cryopick")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and details.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or status lines on stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """cryopick: particle picking for cryo-EM, with pluggable pickers."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if quiet:
        progress.set_quiet(True)


def _add_commands(group: click.Group) -> None:
    from cryopick.cli import (
        eval as eval_cmd,
        export,
        import_,
        init,
        pick,
        plugins,
        preprocess,
        run,
        show,
        simulate,
        train,
    )

    for module, name in ((init, "init"), (import_, "import_cmd"), (preprocess, "preprocess"), (train, "train"),
                         (pick, "pick"), (run, "run"), (eval_cmd, "eval_cmd"), (export, "export"),
                         (plugins, "plugins"), (simulate, "simulate"), (show, "show")):
        group.add_command(getattr(module, name))


_add_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line (no traceback) and exit with status 2."""
    from cryopick.host import build_host

    verbose = "--verbose" in (argv or sys.argv[1:]) or "-v" in (argv or sys.argv[1:])
    try:
        host = build_host()
        host.register_commands(cli)
        if host.load_errors and not progress.is_quiet():
            names = ", ".join(e.name for e in host.load_errors)
            args = argv if argv is not None else sys.argv[1:]
            if not (args and args[0] == "plugins"):
                click.echo(f"warning: plugin(s) failed to load: {names} (see cryopick plugins --verbose)", err=True)
        rv = cli.main(args=argv, prog_name="cryopick", standalone_mode=False, obj={"host": host})
        return rv if isinstance(rv, int) else 0
    except CryopickError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted: rerun the same command to resume", err=True)
        return 130


def get_host(ctx: click.Context):
    from cryopick.host import build_host

    obj = ctx.find_root().obj
    if obj.get("host") is None:
        obj["host"] = build_host()
    return obj["host"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
