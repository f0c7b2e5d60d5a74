"""HydraPicker's network: a shared trunk (thesis Fig. 3.1) and SSD-style heads (Fig. 3.2, §3.1).

The trunk keeps the input resolution (stride 1, fully convolutional); each head halves it four times
(total stride 16) and predicts, on a grid of 16 x 16 px cells, one logit (particle or not) and two centre
offsets per cell. :class:`HydraNet` holds one trunk and named heads: ``generic`` (zero-shot picking) and
one per training data set (§3.2).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from cryopick_hydra.anchors import CELL_PX

#: Name of the generalisation head (§3.2).
GENERIC = "generic"
#: Keyword arguments that define a :class:`HydraNet` (stored with every model).
ARCHITECTURE_KEYS = ("trunk_channels", "trunk_groups", "blocks", "head_widths", "head_groups", "dropout", "prior")


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups, or the largest divisor of ``channels`` below it."""
    return nn.GroupNorm(math.gcd(channels, groups), channels)


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class PairBlock(nn.Module):
    """A residual block whose convolutions are pairs of 3x3 convolutions with no non-linearity in
    between: an effective 5x5 filter with fewer parameters (§3.1)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(_conv3(channels, channels), _conv3(channels, channels))
        self.norm1 = _norm(channels, groups)
        self.conv2 = nn.Sequential(_conv3(channels, channels), _conv3(channels, channels))
        self.norm2 = _norm(channels, groups)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.relu(x + y)


class HydraTrunk(nn.Module):
    """The shared recognition network (Fig. 3.1): two 3x3 convolutions (1 -> C -> C), GroupNorm, ReLU,
    then ``blocks`` residual pair blocks at C channels; stride 1, so the output is ``(B, C, H, W)``."""

    def __init__(self, channels: int = 64, groups: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.stem = nn.Sequential(_conv3(1, channels), _conv3(channels, channels), _norm(channels, groups),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[PairBlock(channels, groups) for _ in range(blocks)])
        # 2 stem convolutions + 4 per block, each widening the field by 2 px
        self.receptive_field = 1 + 2 * (2 + 4 * blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class HydraHead(nn.Module):
    """An SSD-style detection head (Fig. 3.2): dropout, then four blocks of 3x3 stride-2 convolution,
    ReLU, GroupNorm and dropout (64 -> 128 -> 256 -> 512 -> 1024 channels in the paper), then a 3x3
    convolution with three outputs per cell: the particle logit and two centre offsets.

    The logit's bias starts at ``log(prior / (1 - prior))`` so that every anchor begins at probability
    ``prior`` (RetinaNet's initialisation; the reference uses -4, p = 0.018).
    """

    def __init__(self, in_channels: int = 64, widths: tuple[int, ...] = (128, 256, 512, 1024), groups: int = 32,
                 dropout: float = 0.3, prior: float = 0.02) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"a hydra head has four stride-2 blocks (total stride {CELL_PX}); got widths {widths}")
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        cin = in_channels
        for width in widths:
            layers += [_conv3(cin, width, stride=2), nn.ReLU(inplace=True), _norm(width, groups), nn.Dropout(dropout)]
            cin = width
        self.body = nn.Sequential(*layers)
        self.out = _conv3(cin, 3)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[0] = math.log(prior / (1.0 - prior))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, ny, nx), offsets (B, 2, ny, nx))`` on the grid of 16 px cells."""
        y = self.out(self.body(features))
        return y[:, 0], y[:, 1:]


class HeadDict(nn.ModuleDict):
    """Heads by data-set name. Names are any text (``aspire:snr0.005``); torch module names may not hold
    ``.``, so the module key is the name with ``.`` written as ``%2E`` (and ``%`` as ``%25``), reversibly."""

    @staticmethod
    def key(name: str) -> str:
        return name.replace("%", "%25").replace(".", "%2E")

    @staticmethod
    def name(key: str) -> str:
        return key.replace("%2E", ".").replace("%25", "%")

    def __getitem__(self, name: str) -> nn.Module:
        return super().__getitem__(self.key(name))

    def __setitem__(self, name: str, module: nn.Module) -> None:
        super().__setitem__(self.key(name), module)

    def __contains__(self, name: str) -> bool:
        return super().__contains__(self.key(name))

    def keys(self):
        return [self.name(k) for k in super().keys()]

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        return [(self.name(k), m) for k, m in super().items()]


class HydraNet(nn.Module):
    """Trunk plus named heads (Fig. 3.3). ``forward(x, head)`` runs the trunk and one head."""

    def __init__(self, trunk_channels: int = 64, trunk_groups: int = 32, blocks: int = 3,
                 head_widths: tuple[int, ...] = (128, 256, 512, 1024), head_groups: int = 32, dropout: float = 0.3,
                 prior: float = 0.02, heads: tuple[str, ...] = (GENERIC,)) -> None:
        super().__init__()
        self.architecture = {"trunk_channels": int(trunk_channels), "trunk_groups": int(trunk_groups),
                             "blocks": int(blocks), "head_widths": [int(w) for w in head_widths],
                             "head_groups": int(head_groups), "dropout": float(dropout), "prior": float(prior)}
        self.trunk = HydraTrunk(trunk_channels, trunk_groups, blocks)
        self.heads = HeadDict({name: HydraHead(trunk_channels, tuple(head_widths), head_groups, dropout, prior)
                                    for name in heads})
        self.receptive_field = self.trunk.receptive_field + 2 * (1 + 2 + 4 + 8) + 2 * CELL_PX

    @property
    def head_names(self) -> list[str]:
        return list(self.heads.keys())

    def add_head(self, name: str, like: str = GENERIC) -> HydraHead:
        """Add head ``name`` as a copy of head ``like`` (dataset heads start at the generic head, §4.3)."""
        self.heads[name] = copy.deepcopy(self.heads[like])
        return self.heads[name]

    def forward(self, x: torch.Tensor, head: str = GENERIC) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads[head](self.trunk(x))


def hydra_trunk(channels: int = 64, groups: int = 32, blocks: int = 3) -> HydraTrunk:
    """Registered backbone ``hydra-trunk``: the shared feature extractor alone."""
    return HydraTrunk(channels, groups, blocks)


def hydra_net(trunk_channels: int = 64, trunk_groups: int = 32, blocks: int = 3,
              head_widths: tuple[int, ...] = (128, 256, 512, 1024), head_groups: int = 32, dropout: float = 0.3,
              prior: float = 0.02, heads: tuple[str, ...] = (GENERIC,)) -> HydraNet:
    """Registered backbone ``hydra``: trunk and heads (by default only the generic one); ``forward``
    returns ``(logits, offsets)`` on the 16 px grid."""
    return HydraNet(trunk_channels, trunk_groups, blocks, tuple(head_widths), head_groups, dropout, prior,
                    tuple(heads))


def head_vector(head: nn.Module) -> torch.Tensor:
    """All parameters of a head as one flat vector: the W of the bias loss (eq. 3.4)."""
    return torch.cat([p.reshape(-1) for p in head.parameters()])


def net_arrays(net: HydraNet) -> dict:
    """The network's weights as numpy arrays (``trunk.*`` and ``heads.<name>.*``)."""
    from cryopick.torchutil import state_dict_to_arrays

    return state_dict_to_arrays(net)


def net_from_state(arrays: dict, architecture: dict, heads: list[str] | None = None) -> HydraNet:
    """A :class:`HydraNet` with the weights in ``arrays`` (float16 files are read back as float32)."""
    import numpy as np

    from cryopick.torchutil import load_arrays

    names = heads or sorted({HeadDict.name(k.split(".")[1]) for k in arrays if k.startswith("heads.")})
    keys = {HeadDict.key(n) for n in names}
    net = hydra_net(**{k: architecture[k] for k in ARCHITECTURE_KEYS}, heads=tuple(names))
    load_arrays(net, {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()
                      if k.startswith("trunk.") or (k.startswith("heads.") and k.split(".")[1] in keys)})
    return net
