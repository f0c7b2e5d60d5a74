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
