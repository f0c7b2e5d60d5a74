"""``cryopick plugins``: installed plugins, their components by kind, and load errors.

Examples::

    cryopick plugins
    cryopick plugins --verbose      # targets, summaries and load-error tracebacks
    cryopick plugins --json
"""

from __future__ import annotations

import click

from cryopick.cli.options import emit


@click.command("plugins")
@click.option("--verbose", "-v", is_flag=True, help="Show each component's summary and target, and tracebacks.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx, verbose, as_json):
    """List plugins with distribution, version and components by kind."""
    from cryopick.cli.context import get_host
    from cryopick.host import KINDS

    host = get_host(ctx)
    data = {"plugins": [], "load_errors": [], "conflicts": [], "disabled": host.disabled}
    for info in host.plugins:
        comps = {}
        for kind in KINDS:
            items = [r for r in host.registries[kind].items() if r.plugin == info.name]
            if items:
                comps[kind] = [{"name": r.entry.name, "summary": r.entry.summary, "target": r.entry.target}
                               for r in items]
        data["plugins"].append({"name": info.name, "distribution": info.distribution, "version": info.version,
                                "components": comps})
    for err in host.load_errors:
        data["load_errors"].append({"name": err.name, "distribution": err.distribution, "version": err.version,
                                    "error": f"{type(err.error).__name__}: {err.error}",
                                    **({"traceback": err.traceback} if verbose else {})})
    for kind, reg in host.registries.items():
        for name, items in reg.conflicts.items():
            data["conflicts"].append({"kind": kind, "name": name, "distributions": [r.distribution for r in items]})
    lines = []
    for p in data["plugins"]:
        lines.append(f"{p['name']}  ({p['distribution']} {p['version']})")
        for kind in KINDS:
            for c in p["components"].get(kind, []):
                line = f"    {kind:<13} {c['name']}"
                if verbose:
                    line += f"  - {c['summary']}  [{c['target']}]"
                lines.append(line)
    for kind in KINDS:
        if not host.registries[kind].names():
            lines.append(f"(no {kind}s installed)")
    for c in data["conflicts"]:
        lines.append(f"CONFLICT: {c['kind']} {c['name']!r} registered by {' and '.join(c['distributions'])}")
    for e in data["load_errors"]:
        lines.append(f"FAILED: {e['name']} ({e['distribution']} {e['version']}): {e['error']}")
        if verbose:
            lines.append("    " + e["traceback"].rstrip().replace("\n", "\n    "))
    if host.disabled:
        lines.append("disabled by CRYOPICK_DISABLE_PLUGINS: " + ", ".join(host.disabled))
    emit(data, as_json, "\n".join(lines))
