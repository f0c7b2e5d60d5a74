"""Building a picker: the one place that turns a picker name, ``--set`` values and a device into a
configured :class:`~cryopick.picker.Picker` (used by the pipeline, the stage commands, the test helpers
and plugin commands such as ``cryopick mae pretrain``)."""

from __future__ import annotations

from typing import Any

from cryopick.config import build_config
from cryopick.errors import ConfigError

#: The settings key that ``--particles-per-micrograph`` fills; the picker's ``count_setting`` receives it.
COUNT_KEY = "particles_per_micrograph"


def resolve_picker_device(host: Any, name: str, device: str = "auto") -> str:
    """``cpu`` for pickers that do not need torch; otherwise ``device`` resolved (``auto`` -> CUDA when
    present), after checking that torch is importable."""
    entry = host.pickers.get(name)
    if not getattr(entry, "requires_torch", False):
        return "cpu"
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"picker {name!r} needs torch: pip install torch") from exc
    from cryopick.torchutil import resolve_device

    return resolve_device(device)


def picker_config(host: Any, name: str, settings: dict[str, str] | None = None, device: str = "cpu") -> Any:
    """The picker's attrs config from ``--set`` values; the picker's ``default_preset(device)`` applies
    when ``settings`` names no preset. Unknown keys and bad values are a :class:`ConfigError`."""
    cls = host.pickers.load(name)
    settings = dict(settings or {})
    count = settings.pop(COUNT_KEY, None)
    if count is not None:
        if not getattr(cls, "count_setting", None):
            raise ConfigError(f"--particles-per-micrograph: picker {name!r} does not use a particle count")
        settings[cls.count_setting] = count
    if "preset" not in settings:
        preset = cls.default_preset(device)
        if preset:
            settings["preset"] = preset
    config = build_config(cls.Config, settings, cls.presets, owner=f"picker {name}")
    check_components(host, config, f"picker {name}")
    return config


def check_components(host: Any, config: Any, owner: str = "") -> None:
    """Check the config fields that name registered components against the registry.

    A field declares its kind with ``attrs.field(metadata={"component": KIND})`` (for example topaz's
    ``backbone`` and ``loss``), and optionally, for losses, the ``inputs`` it needs (``"pu-logits"``). Any
    registered name of that kind is accepted, whichever distribution registers it; anything else is a
    :class:`ConfigError` listing the names that would work.
    """
    import attrs

    for field in attrs.fields(type(config)):
        kind = field.metadata.get("component")
        value = getattr(config, field.name)
        if not kind or value is None:
            continue
        registry = host.registries[kind]
        inputs = field.metadata.get("inputs")
        usable = [r.entry.name for r in registry.items() if inputs is None or getattr(r.entry, "inputs", None) == inputs]
        if value in registry:
            entry = registry.get(value)
            if inputs is None or getattr(entry, "inputs", None) == inputs:
                continue
            raise ConfigError(f"--set {field.name}={value}: {kind} {value!r} takes {entry.inputs} inputs, "
                              f"{owner} needs {inputs}; use one of: {', '.join(usable) or 'none installed'}")
        try:
            registry.get(value)  # load errors and name clashes explain themselves
        except Exception as exc:
            raise ConfigError(f"--set {field.name}={value}: {exc}"
                              + (f" ({owner} accepts: {', '.join(usable)})" if inputs else "")) from exc


def make_picker(host: Any, name: str, settings: dict[str, str] | None = None, device: str = "auto",
                seed: int = 0, progress: bool = True) -> Any:
    """A configured instance of the registered picker ``name``.

    Parameters
    ----------
    host : cryopick.host.PluginHost
        Where the picker (and the backbones, losses and preprocessors it uses) is registered.
    name : str
        The picker's registered name (``--picker``).
    settings : dict, optional
        ``--set`` values as strings (``{"preset": "tiny", "epochs": "3"}``).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; pickers without ``requires_torch`` always get ``cpu``.
    seed : int
        Random seed given to the picker (runs are deterministic given it).
    """
    from cryopick.picker import PickerContext

    cls = host.pickers.load(name)
    resolved = resolve_picker_device(host, name, device)
    config = picker_config(host, name, settings, resolved)
    return cls(config, PickerContext(device=resolved, seed=seed, host=host, progress=progress, name=name))
