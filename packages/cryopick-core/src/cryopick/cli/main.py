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

_VERBOSE = ("--verbose", "-v")
_QUIET = ("--quiet", "-q")


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and ctx.find_root().obj is not None:
        ctx.find_root().obj["verbose"] = True


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        progress.set_quiet(True)


def _global_options() -> list[click.Option]:
    """``-v``/``-q``, accepted after any subcommand too (``cryopick run -q ...``)."""
    return [
        click.Option(list(_VERBOSE), is_flag=True, expose_value=False, callback=_set_verbose,
                     help="Show tracebacks and details."),
        click.Option(list(_QUIET), is_flag=True, expose_value=False, callback=_set_quiet,
                     help="No progress or status lines on stderr."),
    ]


def add_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands, recursively) the ``-v``/``-q`` options, unless it
    declares its own (``cryopick plugins --verbose``)."""
    taken = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for option in _global_options():
        if not taken & set(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub)
    return command


class CryopickGroup(click.Group):
    """The root group: every command added to it (core's and plugins') accepts ``-v``/``-q``."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_global_options(cmd)
        super().add_command(cmd, name)


@click.group(cls=CryopickGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cryopick")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and details.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or status lines on stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """cryopick: particle picking for cryo-EM, with pluggable pickers."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = ctx.obj.get("verbose", False) or verbose
    if quiet:
        progress.set_quiet(True)


def _add_commands(group: click.Group) -> None:
    from cryopick.cli import (
        eval as eval_cmd,
        export,
        import_,
        import_model,
        init,
        pick,
        plugins,
        preprocess,
        prune,
        run,
        show,
        simulate,
        train,
        watch,
    )

    for module, name in ((init, "init"), (import_, "import_cmd"), (import_model, "import_model"),
                         (preprocess, "preprocess"), (train, "train"),
                         (pick, "pick"), (run, "run"), (eval_cmd, "eval_cmd"), (export, "export"),
                         (plugins, "plugins"), (simulate, "simulate"), (show, "show"), (prune, "prune"),
                         (watch, "watch")):
        group.add_command(getattr(module, name))


_add_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point. User errors (and filesystem errors: disk full, permission denied, read-only) print one
    line ``error: ...`` and exit with status 2; Ctrl-C prints how to resume and exits with 130. Tracebacks
    only with ``-v``."""
    args = list(argv if argv is not None else sys.argv[1:])
    verbose = any(a in _VERBOSE for a in args)
    was_quiet = progress.is_quiet()
    if any(a in _QUIET for a in args):
        progress.set_quiet(True)
    obj: dict = {"host": None, "verbose": verbose}
    try:
        return _main(args, obj)
    finally:
        progress.set_quiet(was_quiet)  # main() called in-process (tests) leaves no global state behind


def _main(args: list[str], obj: dict) -> int:
    from cryopick.host import build_host

    verbose = obj["verbose"]
    try:
        with progress.interrupt_handler():
            host = build_host()
            obj["host"] = host
            host.register_commands(cli)
            if host.load_errors and not progress.is_quiet():
                names = ", ".join(e.name for e in host.load_errors)
                if not (args and args[0] == "plugins"):
                    click.echo(f"warning: plugin(s) failed to load: {names} (see cryopick plugins --verbose)",
                               err=True)
            rv = cli.main(args=args, prog_name="cryopick", standalone_mode=False, obj=obj)
            # a Ctrl-C swallowed on its way up (Python drops exceptions raised in weakref callbacks and
            # __del__, which h5py and numpy memmaps run often) still ends the command as interrupted
            progress.check_interrupted()
        return rv if isinstance(rv, int) else 0
    except (KeyboardInterrupt, click.exceptions.Abort):
        _show_traceback(obj.get("verbose") or verbose)
        click.echo(INTERRUPTED, err=True)
        return 130
    except CryopickError as exc:
        _show_traceback(obj.get("verbose") or verbose)
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except OSError as exc:
        from cryopick.fsutil import describe_os_error

        _show_traceback(obj.get("verbose") or verbose)
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return 2
    except Exception as exc:
        _show_traceback(obj.get("verbose") or verbose)
        if _state_interrupted():
            # Ctrl-C landed inside C code (h5py's lock raises SystemError wrapping the KeyboardInterrupt)
            click.echo(INTERRUPTED, err=True)
            return 130
        hint = "" if obj.get("verbose") or verbose else " (rerun with -v for the traceback)"
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}{hint}; please report it", err=True)
        return 1


INTERRUPTED = "interrupted: rerun the same command to resume"


def _state_interrupted() -> bool:
    """Whether Ctrl-C was pressed during this command (an exception it caused may wear another type)."""
    try:
        progress.check_interrupted()
    except KeyboardInterrupt:
        return True
    return False


def _show_traceback(verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exc()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
