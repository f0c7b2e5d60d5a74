"""HydraPicker's losses on small hand-computed cases (eq. 3.1-3.4), its anchors (§3.1) and its network's shapes."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick_hydra.anchors import CELL_PX, anchor_centres, box_iou, decode, encode, match_anchors  # noqa: E402
from cryopick_hydra.losses import BiasLoss, FocalLoss, L1Localisation, hydra_loss  # noqa: E402


def test_focal_loss_hand_computed():
    # anchor 1: background, logit 0 -> p = 0.5; anchor 2: particle, logit log 3 -> p = 0.75
    logits = torch.tensor([0.0, math.log(3.0)])
    targets = torch.tensor([0.0, 1.0])
    background = -0.5 * 0.75 * 0.5 ** 2 * math.log(0.5)
    particle = -0.5 * 0.25 * 0.25 ** 2 * math.log(0.75)
    value = FocalLoss(alpha=0.25, gamma=2.0)(logits, targets)
    assert value.item() == pytest.approx(background + particle, rel=1e-6)  # one positive: divided by 1
    # gamma = 0, alpha = 0.5: a quarter of the cross-entropy, per positive
    two = FocalLoss(alpha=0.5, gamma=0.0)(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert two.item() == pytest.approx(-0.25 * math.log(0.5), rel=1e-6)


def test_l1_localisation_hand_computed():
    predicted = torch.tensor([[1.0, 2.0], [0.5, -0.5]])
    true = torch.tensor([[1.5, 1.0], [0.0, 0.0]])
    # (0.5 + 1.0 + 0.5 + 0.5) / 2 pairs
    assert L1Localisation()(predicted, true).item() == pytest.approx(1.25)
    assert L1Localisation()(torch.zeros(0, 2), torch.zeros(0, 2)).item() == 0.0


def test_bias_loss_zero_when_heads_equal_generic_and_hand_computed():
    generic = torch.tensor([1.0, -2.0, 0.5])
    assert BiasLoss()(generic.repeat(4, 1), generic).item() == 0.0
    heads = torch.stack([generic + torch.tensor([3.0, 4.0, 0.0]), generic])  # norms 5 and 0
    assert BiasLoss()(heads, generic).item() == pytest.approx(2.5)
    assert hydra_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.5, 0.1).item() == pytest.approx(2.3)


def test_bias_loss_zero_for_copied_heads_of_a_network():
    from cryopick_hydra.model import GENERIC, head_vector, hydra_net

    net = hydra_net(trunk_channels=8, trunk_groups=4, blocks=1, head_widths=(8, 8, 8, 8), head_groups=4)
    net.add_head("a")
    net.add_head("b")
    heads = torch.stack([head_vector(net.heads[n]) for n in ("a", "b")])
    assert BiasLoss()(heads, head_vector(net.heads[GENERIC])).item() == 0.0


def test_anchor_encoding_round_trips():
    anchors = anchor_centres(3, 4)
    assert anchors.shape == (12, 2)
    np.testing.assert_array_equal(anchors[5], [1 * CELL_PX + 7.5, 1 * CELL_PX + 7.5])  # row 1, column 1
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 1, size=(12, 2))
    centres = decode(offsets, anchors)
    assert np.all(np.abs(centres - anchors) < 0.75 * CELL_PX)  # within 0.75 cell of the anchor
    np.testing.assert_allclose(encode(centres, anchors), offsets, rtol=1e-12, atol=1e-12)
    shifted = anchors + rng.uniform(-11.9, 11.9, size=(12, 2))
    np.testing.assert_allclose(decode(encode(shifted, anchors), anchors), shifted, rtol=0, atol=1e-12)
    # torch and numpy decode alike
    np.testing.assert_allclose(decode(torch.from_numpy(offsets), torch.from_numpy(anchors)).numpy(), centres)
    with pytest.raises(ValueError):
        encode(anchors + 12.0, anchors)


def test_box_iou_and_matching():
    assert box_iou(np.array([[0.0, 0.0]]), 16, np.array([[8.0, 0.0]]), 16)[0, 0] == pytest.approx(128 / 384)
    anchors = anchor_centres(2, 2)  # (7.5, 7.5), (23.5, 7.5), (7.5, 23.5), (23.5, 23.5)
    # particle 0 sits on anchor 0 with the anchor's size (IoU 1); particle 1 of 22 px sits between anchors 1 and 3:
    # no anchor reaches IoU 0.6 but its best one (anchor 3, nearer) is forced positive
    centres = np.array([[7.5, 7.5], [23.5, 17.0]])
    matched = match_anchors(anchors, centres, box_px=16)
    np.testing.assert_array_equal(matched, [0, -1, -1, 1])
    assert np.all(match_anchors(anchors, np.zeros((0, 2)), 16) == -1)


def test_network_shapes_and_initial_prior():
    from cryopick_hydra.model import hydra_net, hydra_trunk

    trunk = hydra_trunk(channels=8, groups=4, blocks=3)
    assert trunk(torch.zeros(1, 1, 40, 24)).shape == (1, 8, 40, 24)  # stride 1, fully convolutional
    net = hydra_net(trunk_channels=8, trunk_groups=4, blocks=1, head_widths=(8, 8, 16, 16), head_groups=4,
                    prior=0.02).eval()
    logits, offsets = net(torch.zeros(2, 1, 64, 96))
    assert logits.shape == (2, 4, 6) and offsets.shape == (2, 2, 4, 6)  # total stride 16
    assert net.heads["generic"].out.bias[0].item() == pytest.approx(math.log(0.02 / 0.98))



def test_heads_may_be_named_with_dots_and_percent_signs():
    """Data-set names such as ``aspire:aspire-snr0.005`` name heads (torch forbids '.' in module names);
    weights saved and loaded keep them."""
    import torch

    from cryopick_hydra.model import HeadDict, hydra_net, net_arrays, net_from_state

    for name in ("aspire:aspire-snr0.005", "a%2Eb", "plain"):
        assert HeadDict.name(HeadDict.key(name)) == name and "." not in HeadDict.key(name)
    arch = dict(trunk_channels=8, trunk_groups=4, blocks=1, head_widths=(8, 8, 8, 8), head_groups=4)
    net = hydra_net(**arch)
    net.add_head("aspire:aspire-snr0.005")
    net.add_head("a%2Eb")
    assert net.head_names == ["generic", "aspire:aspire-snr0.005", "a%2Eb"]
    x = torch.randn(1, 1, 32, 32)
    back = net_from_state(net_arrays(net), {**arch, "dropout": 0.3, "prior": 0.02})
    assert sorted(back.head_names) == sorted(net.head_names)
    net.eval(), back.eval()
    torch.testing.assert_close(back(x, "aspire:aspire-snr0.005")[0], net(x, "aspire:aspire-snr0.005")[0])


def test_picking_scale_is_pick_diameter_px_and_training_scale_is_target_diameter_px():
    """Picking (and the few-shot head) downsamples to pick_diameter_px (25 by default: the shipped model, trained
    at 22, ranks best there on independent data); ``pick_diameter_px=none`` (what ``cryopick hydra train`` sets)
    falls back to target_diameter_px (§4.1)."""
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    host = build_host()
    picker = make_picker(host, "hydra", {}, "cpu", 0)
    assert picker.scale_px() == 25.0
    assert picker.preprocessing(100.0, None)[0] == ("downsample", {"factor": 4.0})
    assert picker._losses().box_px == 25.0
    training = make_picker(host, "hydra", {"pick_diameter_px": "none"}, "cpu", 0)
    assert training.scale_px() == training.config.target_diameter_px == 22.0
    assert training.preprocessing(110.0, None)[0] == ("downsample", {"factor": 5.0})
    # small particles are never upsampled
    assert picker.preprocessing(20.0, None)[0] == ("downsample", {"factor": 1.0})
