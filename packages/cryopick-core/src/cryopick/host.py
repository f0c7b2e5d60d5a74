"""The plugin host: loads plugins from the ``cryopick`` entry-point group and keeps one registry per
component kind.

Build one with :func:`build_host`; there is no module-level singleton. Each entry point is loaded on
its own, and a plugin that fails to import is kept as a :class:`LoadError` instead of crashing the host;
the error surfaces, chained to its cause, only when the user asks for a component that plugin would
provide. ``CRYOPICK_DISABLE_PLUGINS=a,b`` skips plugins by entry-point or distribution name.
"""

from __future__ import annotations

import difflib
import os
import traceback
from importlib import metadata
from typing import Any

import attrs
import pluggy

from cryopick import hookspecs
from cryopick.entries import ENTRY_TYPES, Entry
from cryopick.errors import DuplicateComponentError, PluginLoadError, UnknownComponentError

ENTRY_POINT_GROUP = "cryopick"
CORE_DISTRIBUTION = "cryopick-core"

#: Components of the first-party plugin distributions in this repository (packages/), so that an unknown
#: name can say what to install. Only components those distributions really register are listed
#: (tests/core/test_contract.py checks this against the installed plugins).
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "picker": {"mae": "cryopick-mae", "topaz": "cryopick-topaz", "hydra": "cryopick-hydra"},
    "backbone": {"vit-mae": "cryopick-mae", "resnet8": "cryopick-topaz", "resnet16": "cryopick-topaz",
                 "conv31": "cryopick-topaz", "conv63": "cryopick-topaz", "conv127": "cryopick-topaz",
                 "hydra": "cryopick-hydra", "hydra-trunk": "cryopick-hydra"},
    "loss": {"scs": "cryopick-mae", "scs-pu": "cryopick-mae", "pn": "cryopick-topaz", "ge-kl": "cryopick-topaz",
             "ge-binomial": "cryopick-topaz", "nnpu": "cryopick-topaz", "hydra-focal": "cryopick-hydra",
             "hydra-l1": "cryopick-hydra", "hydra-bias": "cryopick-hydra"},
    "preprocessor": {"gmm": "cryopick-topaz"},
    "model_importer": {"topaz-em": "cryopick-topaz"},
}

_REGISTER_HOOKS = {
    "preprocessor": "cryopick_register_preprocessors",
    "backbone": "cryopick_register_backbones",
    "loss": "cryopick_register_losses",
    "thresholder": "cryopick_register_thresholders",
    "exporter": "cryopick_register_exporters",
    "importer": "cryopick_register_importers",
    "picker": "cryopick_register_pickers",
    "model_importer": "cryopick_register_model_importers",
}
KINDS = tuple(_REGISTER_HOOKS)


@attrs.define
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str


@attrs.define
class LoadError:
    """A plugin that could not be loaded or whose registration hook failed."""

    name: str
    distribution: str
    version: str
    error: BaseException
    traceback: str

    def one_line(self) -> str:
        return f"{self.name} ({self.distribution} {self.version}): {type(self.error).__name__}: {self.error}"


@attrs.define
class Registered:
    entry: Entry
    plugin: str
    distribution: str


class Registry:
    """Components of one kind, by name."""

    def __init__(self, kind: str, host: PluginHost) -> None:
        self.kind = kind
        self._host = host
        self._items: dict[str, Registered] = {}
        self.conflicts: dict[str, list[Registered]] = {}

    def add(self, item: Registered) -> None:
        name = item.entry.name
        if name in self.conflicts:
            self.conflicts[name].append(item)
        elif name in self._items:
            self.conflicts[name] = [self._items.pop(name), item]
        else:
            self._items[name] = item

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[Registered]:
        return [self._items[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def get(self, name: str) -> Entry:
        return self.registered(name).entry

    def registered(self, name: str) -> Registered:
        if name in self._items:
            return self._items[name]
        if name in self.conflicts:
            dists = " and ".join(f"{r.distribution} (plugin {r.plugin})" for r in self.conflicts[name])
            raise DuplicateComponentError(
                f"{self.kind} {name!r} is registered by both {dists}; uninstall one or disable it with "
                f"CRYOPICK_DISABLE_PLUGINS")
        raise self._unknown(name)

    def load(self, name: str) -> Any:
        """Import and return the component's target; import failures become :class:`PluginLoadError`."""
        item = self.registered(name)
        try:
            return item.entry.load()
        except Exception as exc:
            raise PluginLoadError(
                f"{self.kind} {name!r} from {item.distribution} failed to import {item.entry.target}: "
                f"{type(exc).__name__}: {exc}. Reinstall {item.distribution} or check its dependencies.") from exc

    def _unknown(self, name: str) -> Exception:
        provider = KNOWN_PROVIDERS.get(self.kind, {}).get(name)
        for err in self._host.load_errors:
            if err.name == name or (provider and err.distribution == provider):
                exc = PluginLoadError(
                    f"{self.kind} {name!r} is unavailable because plugin {err.name!r} ({err.distribution}) "
                    f"failed to load: {type(err.error).__name__}: {err.error}. "
                    f"Run 'cryopick plugins --verbose' for details.")
                exc.__cause__ = err.error
                return exc
        installed = ", ".join(self.names()) or "none"
        parts = [f"unknown {self.kind} {name!r}. Installed: {installed}."]
        close = difflib.get_close_matches(name, self.names(), n=1)
        if close:
            parts.append(f"Did you mean {close[0]!r}?")
        if provider:
            parts.append(f"It is provided by {provider}, which is not on a package index: install it from a "
                         f"cryopick checkout with pip install ./packages/{provider}")
        if self._host.load_errors:
            parts.append(f"({len(self._host.load_errors)} plugin(s) failed to load: cryopick plugins --verbose)")
        return UnknownComponentError(" ".join(parts))


class PluginHost:
    """Plugins, their load errors, and one :class:`Registry` per component kind."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.load_errors: list[LoadError] = []
        self.disabled: list[str] = []
        self.registries: dict[str, Registry] = {kind: Registry(kind, self) for kind in KINDS}

    # One typed property per kind (the registries themselves are in ``registries``, keyed by kind).
    @property
    def preprocessors(self) -> Registry:
        return self.registries["preprocessor"]

    @property
    def backbones(self) -> Registry:
        return self.registries["backbone"]

    @property
    def losses(self) -> Registry:
        return self.registries["loss"]

    @property
    def thresholders(self) -> Registry:
        return self.registries["thresholder"]

    @property
    def exporters(self) -> Registry:
        return self.registries["exporter"]

    @property
    def importers(self) -> Registry:
        return self.registries["importer"]

    @property
    def pickers(self) -> Registry:
        return self.registries["picker"]

    @property
    def model_importers(self) -> Registry:
        return self.registries["model_importer"]

    def register(self, plugin: object, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object or module and collect its components."""
        self.pm.register(plugin, name=name)
        self.plugins.append(PluginInfo(name, distribution or name, version, getattr(plugin, "__name__", repr(plugin))))

    def collect(self) -> None:
        """Call every registration hook, plugin by plugin, so that a failing plugin is isolated."""
        self.pm.check_pending()
        infos = {p.name: p for p in self.plugins}
        failed: set[str] = set()
        for kind, hook_name in _REGISTER_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                info = infos[impl.plugin_name]
                if info.name in failed:
                    continue
                try:
                    entries = list(impl.function() or [])
                    expected = ENTRY_TYPES[kind]
                    for entry in entries:
                        if not isinstance(entry, expected):
                            raise TypeError(f"{hook_name} returned {type(entry).__name__}, expected {expected.__name__}")
                except Exception as exc:
                    failed.add(info.name)
                    self._record_error(info.name, info.distribution, info.version, exc)
                    continue
                for entry in entries:
                    self.registries[kind].add(Registered(entry, info.name, info.distribution))
        for name in failed:  # a plugin whose hook failed contributes nothing
            for registry in self.registries.values():
                registry._items = {k: v for k, v in registry._items.items() if v.plugin != name}
            self.pm.unregister(name=name)

    def _record_error(self, name: str, distribution: str, version: str, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.load_errors.append(LoadError(name, distribution, version, exc, tb))

    def register_commands(self, cli) -> None:
        for impl in reversed(self.pm.hook.cryopick_register_commands.get_hookimpls()):
            try:
                impl.function(cli)
            except Exception as exc:
                info = next(p for p in self.plugins if p.name == impl.plugin_name)
                self._record_error(info.name, info.distribution, info.version, exc)

    def components(self, plugin: str) -> dict[str, list[str]]:
        return {kind: [r.entry.name for r in reg.items() if r.plugin == plugin]
                for kind, reg in self.registries.items()}


def _disabled_from_env() -> set[str]:
    return {p.strip() for p in os.environ.get("CRYOPICK_DISABLE_PLUGINS", "").split(",") if p.strip()}


def build_host(load_entry_points: bool = True, disabled: set[str] | None = None,
               plugins: list[tuple[str, object]] | None = None) -> PluginHost:
    """A fresh host with the core plugin, every ``cryopick`` entry point (unless ``load_entry_points`` is
    False) and any extra ``(name, plugin)`` pairs (for tests)."""
    from cryopick import __version__, plugin as core_plugin

    host = PluginHost()
    disabled = _disabled_from_env() if disabled is None else set(disabled)
    host.register(core_plugin, "core", CORE_DISTRIBUTION, __version__)
    if load_entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ep.value.split(":")[0]
            version = dist.version if dist is not None else ""
            if ep.name in disabled or dist_name in disabled:
                host.disabled.append(ep.name)
                continue
            if host.pm.has_plugin(ep.name):
                host._record_error(ep.name, dist_name, version,
                                   RuntimeError(f"a plugin named {ep.name!r} is already loaded"))
                continue
            try:
                obj = ep.load()
                host.register(obj, ep.name, dist_name, version)
                host.pm.check_pending()  # a misspelt hook name fails loudly, but only this plugin
            except Exception as exc:
                if host.pm.has_plugin(ep.name):
                    host.pm.unregister(name=ep.name)
                    host.plugins = [p for p in host.plugins if p.name != ep.name]
                host._record_error(ep.name, dist_name, version, exc)
    for name, obj in plugins or []:
        host.register(obj, name)
    host.collect()
    return host
