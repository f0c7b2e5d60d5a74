"""The ``vit-mae`` backbone: a Vision Transformer masked autoencoder (He et al., 2022) for 1-channel images.

The encoder sees only the visible patches (plus a CLS token); a light decoder gets the encoded visible
tokens back in place, mask tokens elsewhere, and predicts the pixels of every patch. The reconstruction
loss is the mean squared error over the *masked* patches only. Position embeddings are fixed 2-D sin-cos.

The feature used for similarity scoring (:meth:`MaskedAutoencoderViT.features`) is by default the mean of the
encoder's output patch tokens (after the final layer norm), not the CLS token: the reconstruction loss
trains the patch tokens directly while the CLS token only receives gradients through attention, and the
mean over the *visible* tokens of a masked input (what the self-cross similarity loss sees in training)
is an unbiased, noisier estimate of the mean over all tokens (what picking sees), so the two stages
compare like with like.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE_KEYS = ("image_size", "patch_size", "embed_dim", "depth", "num_heads",
                     "decoder_dim", "decoder_depth", "decoder_heads", "mlp_ratio", "norm_pix_loss")


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """``(len(positions), dim)`` sin-cos embedding: half the channels sine, half cosine, geometric
    frequencies from 1 down to 1/10000."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    freqs = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    angles = np.outer(positions.reshape(-1).astype(np.float64), freqs)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid: int, cls_token: bool = True) -> np.ndarray:
    """Fixed 2-D position embedding of a ``grid x grid`` patch layout (row-major), half the channels
    encoding the row and half the column; a zero row is prepended for the CLS token."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    emb = np.concatenate([sincos_1d(dim // 2, rows), sincos_1d(dim // 2, cols)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return emb.astype(np.float32)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: attention and a GELU MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoderViT(nn.Module):
    """ViT masked autoencoder on ``image_size``-square, 1-channel inputs cut into ``patch_size`` patches."""

    def __init__(self, image_size: int = 224, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, decoder_dim: int = 512, decoder_depth: int = 8, decoder_heads: int = 16,
                 mlp_ratio: float = 4.0, norm_pix_loss: bool = False) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.num_patches = self.grid ** 2
        self.norm_pix_loss = norm_pix_loss
        self.architecture = dict(image_size=image_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                                 num_heads=num_heads, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                                 decoder_heads=decoder_heads, mlp_ratio=mlp_ratio, norm_pix_loss=norm_pix_loss)

        self.patch_embed = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("pos_embed", torch.from_numpy(sincos_2d(embed_dim, self.grid))[None], persistent=False)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", torch.from_numpy(sincos_2d(decoder_dim, self.grid))[None],
                             persistent=False)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads, mlp_ratio) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, patch_size ** 2)
        self._init_weights()

    def _init_weights(self) -> None:
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a linear layer on flattened patches
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- patches -------------------------------------------------------------------------------------
    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)`` -> ``(B, L, p*p)`` in row-major patch order."""
        p, g = self.patch_size, self.grid
        x = images.reshape(images.shape[0], g, p, g, p)
        return x.permute(0, 1, 3, 2, 4).reshape(images.shape[0], g * g, p * p)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        p, g = self.patch_size, self.grid
        x = patches.reshape(patches.shape[0], g, g, p, p).permute(0, 1, 3, 2, 4)
        return x.reshape(patches.shape[0], 1, g * p, g * p)

    def random_masking(self, x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None):
        """Keep a random ``1 - mask_ratio`` of the tokens of each sample (its own shuffle per sample).

        Returns the kept tokens, the binary mask (1 = masked, in original patch order) and the indices
        that restore the original order."""
        b, n, d = x.shape
        keep = max(1, int(round(n * (1 - mask_ratio))))
        noise = torch.rand(b, n, device=x.device, generator=generator)
        shuffle = torch.argsort(noise, dim=1)
        restore = torch.argsort(shuffle, dim=1)
        kept = torch.gather(x, 1, shuffle[:, :keep, None].expand(-1, -1, d))
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        return kept, mask, restore

    # -- encoder / decoder ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, mask_ratio: float = 0.0, generator: torch.Generator | None = None):
        """Encoder output ``(B, 1 + L_visible, D)`` (CLS first), the mask and the restore indices."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]
        if mask_ratio > 0:
            x, mask, restore = self.random_masking(x, mask_ratio, generator)
        else:
            mask = torch.zeros(x.shape[:2], device=x.device)
            restore = None
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, restore

    def decode(self, latent: torch.Tensor, restore: torch.Tensor | None) -> torch.Tensor:
        """Predicted pixels ``(B, L, p*p)`` for every patch."""
        x = self.decoder_embed(latent)
        cls, visible = x[:, :1], x[:, 1:]
        if restore is not None:
            missing = restore.shape[1] - visible.shape[1]
            visible = torch.cat([visible, self.mask_token.expand(x.shape[0], missing, -1)], dim=1)
            visible = torch.gather(visible, 1, restore[:, :, None].expand(-1, -1, x.shape[2]))
        x = torch.cat([cls, visible], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def reconstruction_loss(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the masked patches only (visible patches do not count)."""
        target = self.patchify(images)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = ((pred - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)

    def pool(self, latent: torch.Tensor, restore: torch.Tensor | None = None, pooling: str = "mean") -> torch.Tensor:
        """One feature vector per sample from the encoder output: ``mean`` of the patch tokens, the ``cls``
        token, or all patch ``tokens`` in patch order, flattened (masked positions zero)."""
        if pooling == "cls":
            return latent[:, 0]
        tokens = latent[:, 1:]
        if pooling == "mean":
            return tokens.mean(dim=1)
        if pooling == "tokens":
            if restore is not None:
                b, n, d = tokens.shape
                full = torch.cat([tokens, tokens.new_zeros(b, restore.shape[1] - n, d)], dim=1)
                tokens = torch.gather(full, 1, restore[:, :, None].expand(-1, -1, d))
            return tokens.flatten(1)
        raise ValueError(f"pooling must be mean, cls or tokens, not {pooling!r}")

    def forward(self, images: torch.Tensor, mask_ratio: float = 0.75, generator: torch.Generator | None = None,
                pooling: str = "mean"):
        """Masked autoencoding: ``(loss, pred, mask, features)`` with ``features`` the pooled encoder
        output of the visible patches (what the self-cross similarity loss compares)."""
        latent, mask, restore = self.encode(images, mask_ratio, generator)
        pred = self.decode(latent, restore)
        loss = self.reconstruction_loss(images, pred, mask)
        return loss, pred, mask, self.pool(latent, restore, pooling)

    def features(self, images: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
        """Similarity feature of unmasked inputs ``(B, D)`` (``(B, L * D)`` for ``tokens``)."""
        latent, _, _ = self.encode(images, 0.0)
        return self.pool(latent, None, pooling)

    def freeze_encoder_blocks(self, count: int) -> None:
        """Freeze the patch embedding, the CLS token and the first ``count`` encoder blocks."""
        frozen = [self.patch_embed, *self.blocks[:count]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)
        self.cls_token.requires_grad_(count == 0)


def build_vit_mae(**architecture) -> MaskedAutoencoderViT:
    """Backbone factory (registry target of ``vit-mae``); unknown keys are ignored."""
    return MaskedAutoencoderViT(**{k: v for k, v in architecture.items() if k in ARCHITECTURE_KEYS})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

