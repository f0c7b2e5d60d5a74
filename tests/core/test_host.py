"""Plugin host: discovery through entry points, broken plugins, unknown and duplicate names."""

import subprocess
import sys

import pytest

from cryopick import hookimpl
from cryopick.entries import PickerEntry
from cryopick.errors import DuplicateComponentError, PluginLoadError, UnknownComponentError
from cryopick.host import KINDS, build_host


def test_core_registers_every_builtin_kind():
    host = build_host(load_entry_points=False)
    assert "dog" in host.pickers
    assert {"fixed", "topk", "otsu", "density"} <= set(host.thresholders.names())
    assert {"downsample", "normalize", "lowpass"} <= set(host.preprocessors.names())
    assert {"star", "box", "txt", "csv", "cs"} <= set(host.exporters.names())
    assert {"star", "box", "txt", "csv", "cs"} <= set(host.importers.names())
    assert host.load_errors == []


def test_third_party_picker_discovered_from_its_distribution(third_party):
    host = build_host()
    reg = host.pickers.registered("example")
    assert reg.distribution == "cryopick-example"
    assert "half" in host.thresholders
    cls = host.pickers.load("example")
    assert cls.__name__ == "DarkSpotPicker"


def test_broken_plugin_is_reported_not_raised(third_party):
    host = build_host()
    errors = {e.name: e for e in host.load_errors}
    assert "broken" in errors
    assert errors["broken"].distribution == "cryopick-broken"
    assert isinstance(errors["broken"].error, ModuleNotFoundError)
    assert "dog" in host.pickers  # the rest still works
    with pytest.raises(PluginLoadError) as info:
        host.pickers.get("broken")
    assert "cryopick-broken" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_disable_plugins_env(third_party, monkeypatch):
    monkeypatch.setenv("CRYOPICK_DISABLE_PLUGINS", "example,broken")
    host = build_host()
    assert "example" not in host.pickers
    assert host.load_errors == [] or all(e.name != "broken" for e in host.load_errors)
    assert set(host.disabled) >= {"example", "broken"}


def test_unknown_name_suggests_close_match_and_distribution():
    host = build_host(load_entry_points=False)
    with pytest.raises(UnknownComponentError) as info:
        host.pickers.get("dgo")
    msg = str(info.value)
    assert "Did you mean 'dog'" in msg and "Installed: dog" in msg
    with pytest.raises(UnknownComponentError) as info:
        host.pickers.get("topaz")  # core only: topaz is not registered, and its distribution is named
    assert "cryopick-topaz" in str(info.value)
    with pytest.raises(UnknownComponentError) as info:
        host.losses.get("hydra-bias")  # a plugin's loss names its distribution too
    assert "cryopick-hydra" in str(info.value)


class _DupA:
    @hookimpl
    def cryopick_register_pickers(self):
        return [PickerEntry("dog", "cryopick.pickers.dog:DoGPicker", "again")]


def test_duplicate_name_is_an_error_naming_both():
    host = build_host(load_entry_points=False, plugins=[("dupe", _DupA())])
    with pytest.raises(DuplicateComponentError) as info:
        host.pickers.get("dog")
    assert "cryopick-core" in str(info.value) and "dupe" in str(info.value)


class _Misspelt:
    @hookimpl
    def cryopick_register_pickerz(self):
        return []


def test_misspelt_hook_fails_loudly():
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        build_host(load_entry_points=False, plugins=[("typo", _Misspelt())])


class _BadHook:
    @hookimpl
    def cryopick_register_pickers(self):
        raise RuntimeError("boom")


def test_failing_registration_hook_becomes_load_error():
    host = build_host(load_entry_points=False, plugins=[("bad", _BadHook())])
    assert [e.name for e in host.load_errors] == ["bad"]
    assert "dog" in host.pickers


def test_registries_exist_for_every_kind():
    host = build_host(load_entry_points=False)
    assert set(host.registries) == set(KINDS)
    assert host.backbones is host.registries["backbone"]
    assert host.losses is host.registries["loss"]


def test_plugin_entry_modules_do_not_import_torch():
    """STYLE.md 4: listing plugins must stay cheap."""
    code = ("import sys\nfrom cryopick.host import build_host\nfrom cryopick.cli import main\n"
            "h = build_host()\nassert 'torch' not in sys.modules, [m for m in sys.modules if 'torch' in m][:5]\n"
            "print(len(h.plugins))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
