"""CryoMAE eq. 1-6 against hand-computed values."""

import pytest

torch = pytest.importorskip("torch")

from cryopick_mae.losses import (  # noqa: E402
    pu_self_cross_similarity,
    scs_loss,
    scs_pu_loss,
    self_cross_similarity,
    total_loss,
)

# Two orthogonal exemplars and one unlabelled region equal to the first exemplar (scaled: cosine ignores norm).
F_L = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
F_U = torch.tensor([[3.0, 0.0]])


def test_self_and_cross_similarity_eq_1_2():
    s_self, s_cross = self_cross_similarity(F_L, F_U)
    # eq. 1: (1 + 0 + 0 + 1) / 2^2; eq. 2: (1 + 0) / (2 * 1)
    assert float(s_self) == pytest.approx(0.5)
    assert float(s_cross) == pytest.approx(0.5)


def test_scs_loss_eq_3():
    # 1 + 0.7 * 0.5 - 0.3 * 0.5
    assert float(scs_loss(alpha=0.7, tau=0.02)(F_L, F_U)) == pytest.approx(1.2)


def test_scs_loss_floor_tau():
    same = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    opposite = torch.tensor([[-1.0, 0.0]])
    # 1 + 0.7 * (-1) - 0.3 * 1 = 0 < tau
    assert float(scs_loss(alpha=0.7, tau=0.02)(same, opposite)) == pytest.approx(0.02)


def test_scs_floor_stops_the_pull():
    # Exemplars 60 degrees apart, the unlabelled region opposite their mean: S_self = (2 + 2 * 0.5) / 4 = 0.75,
    # S_cross = -cos(30 deg) = -0.866, so 1 + 0.7 S_cross - 0.3 S_self = 0.169: between the paper's floor and 0.2.
    f_l = torch.tensor([[1.0, 0.0], [0.5, 0.75 ** 0.5]], requires_grad=True)
    f_u = torch.tensor([[-(0.75 ** 0.5), -0.5]])
    for tau, pulls in ((0.02, True), (0.2, False)):  # the cpu preset's 0.1 stops once the value falls below 0.1
        f_l.grad = None
        value = scs_loss(alpha=0.7, tau=tau)(f_l, f_u)
        value.backward()
        assert float(value) == pytest.approx(max(tau, 1 - 0.7 * 0.75 ** 0.5 - 0.3 * 0.75), abs=1e-6)
        assert (float(f_l.grad.abs().sum()) > 1e-3) is pulls


def test_cpu_preset_floor():
    from cryopick.config import build_config
    from cryopick_mae.picker import MAEConfig, MAEPicker

    assert build_config(MAEConfig, {"preset": "cpu"}, MAEPicker.presets).tau == 0.1
    assert build_config(MAEConfig, {"preset": "paper"}, MAEPicker.presets).tau == 0.02


def test_pu_adjusted_similarities_eq_4_5():
    # S_ll = 2, S_lu = 1, S_uu = 1, m = 2, n = 1, pi = 0.5
    s_self, s_cross = pu_self_cross_similarity(F_L, F_U, 0.5)
    assert float(s_self) == pytest.approx((2 + 2 * 0.5 * 1 + 0.25 * 1) / 2.5 ** 2)  # 0.52
    assert float(s_cross) == pytest.approx((0.5 * 1 + 0.5 * 0.5 * 1) / (2.5 * 0.5 * 1))  # 0.6
    assert float(scs_pu_loss(alpha=0.7, tau=0.02, pi=0.5)(F_L, F_U)) == pytest.approx(1 + 0.7 * 0.6 - 0.3 * 0.52)


def test_pu_reduces_to_plain_at_pi_zero():
    g = torch.Generator().manual_seed(0)
    f_l, f_u = torch.randn(5, 8, generator=g), torch.randn(7, 8, generator=g)
    plain = self_cross_similarity(f_l, f_u)
    pu = pu_self_cross_similarity(f_l, f_u, 0.0)
    assert torch.allclose(plain[0], pu[0]) and torch.allclose(plain[1], pu[1])


def test_pu_loss_has_gradients():
    f_l = torch.randn(4, 6, requires_grad=True)
    f_u = torch.randn(8, 6, requires_grad=True)
    scs_pu_loss()(f_l, f_u).backward()
    assert f_l.grad.abs().sum() > 0 and f_u.grad.abs().sum() > 0


def test_total_loss_eq_6():
    assert float(total_loss(torch.tensor(0.3), torch.tensor(0.1), beta=5.0)) == pytest.approx(0.8)
    assert float(total_loss(torch.tensor(0.3), None, beta=5.0)) == pytest.approx(0.3)
