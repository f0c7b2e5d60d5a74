"""cryopick.torchutil.CompiledStep: compiled when it can be, eager (and said so once) when it cannot."""

import pytest

torch = pytest.importorskip("torch")

from cryopick.torchutil import CompiledStep  # noqa: E402


def _forward(model, x):
    return model(x)


def test_disabled_step_runs_eagerly_without_compiling(monkeypatch):
    def no_compile(fn):
        raise AssertionError("compiled although disabled")

    monkeypatch.setattr(torch, "compile", no_compile)
    model = torch.nn.Linear(3, 2)
    x = torch.ones(4, 3)
    step = CompiledStep(_forward, enabled=False)
    assert torch.equal(step(model, x), model(x))


def test_a_failing_compiler_falls_back_to_eager_once_and_says_so(monkeypatch, capsys):
    calls = []

    def broken_compile(fn):
        calls.append(fn)

        def compiled(*args):
            raise RuntimeError("no C++ compiler")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = torch.nn.Linear(3, 2)
    x = torch.ones(4, 3)
    step = CompiledStep(_forward, enabled=True, label="test train")
    out = step(model, x)
    assert torch.equal(out, model(x))
    assert step.enabled is False
    assert torch.equal(step(model, x), model(x))  # no second attempt
    assert len(calls) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert "test train: torch.compile is not available here (RuntimeError)" in text
    assert text.count("torch.compile is not available") == 1


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    from cryopick.torchutil import native_bf16_cpu

    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert native_bf16_cpu(str(with_bf16)) is True
    assert native_bf16_cpu(str(without)) is False
    assert native_bf16_cpu(str(tmp_path / "missing")) is False  # not Linux: float32


def test_training_precision_auto_is_bfloat16_only_on_a_bf16_cpu(monkeypatch):
    import cryopick.torchutil as tu
    from cryopick.errors import ConfigError

    monkeypatch.setattr(tu, "native_bf16_cpu", lambda: True)
    assert tu.training_precision("auto", "cpu") == "bfloat16"
    assert tu.training_precision("auto", "cuda") == "float32"  # not measured on CUDA: not chosen
    monkeypatch.setattr(tu, "native_bf16_cpu", lambda: False)
    assert tu.training_precision("auto", "cpu") == "float32"
    assert tu.training_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ConfigError, match="precision='half': auto, float32 or bfloat16"):
        tu.training_precision("half", "cpu")


def test_bfloat16_autocast_runs_convolutions_in_bfloat16_and_keeps_float32_weights():
    from cryopick.torchutil import autocast

    conv = torch.nn.Conv2d(1, 4, 3)
    x = torch.randn(2, 1, 8, 8)
    with autocast("cpu", "bfloat16"):
        low = conv(x)
    with autocast("cpu", "float32"):
        full = conv(x)
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert conv.weight.dtype == torch.float32
    torch.testing.assert_close(low.float(), full, rtol=2e-2, atol=2e-2)  # bfloat16 keeps 8 bits of mantissa
