"""``cryopick mae``: commands of the CryoMAE plugin.

Examples::

    # self-supervised pre-training on many micrographs (10 random regions each, 100 epochs: §4.1.5)
    cryopick mae pretrain --micrographs 'data/*.mrc' --diameter 40 --out mae-weights.h5 --preset cpu
    # then use the weights for few-shot picking
    cryopick run --picker mae --micrographs 'query/*.mrc' --labels exemplars.star --diameter 40 \\
        --set checkpoint=mae-weights.h5

torch is imported inside the command, so ``cryopick --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import micrographs_option


@click.group("mae")
def mae_group():
    """CryoMAE plugin commands (pre-training)."""


@mae_group.command("pretrain")
@micrographs_option(help="Unlabelled micrographs: a folder, a glob ('data/*.mrc') or several files.", required=True)
@click.option("--diameter", required=True, help="Particle diameter: pixels (40) or Ångström (150A).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Weights file to write (.h5).")
@click.option("--preset", default=None, help="paper or cpu (default: cpu without CUDA, paper with).")
@click.option("--epochs", type=int, default=100, show_default=True, help="Passes over the regions.")
@click.option("--regions-per-micrograph", type=int, default=10, show_default=True,
              help="Random regions cut from each micrograph.")
@click.option("--batch", type=int, default=None, help="Regions per step (default: the preset's pretrain_batch).")
@click.option("--lr", type=float, default=None, help="Learning rate (default: the preset's pretrain_lr).")
@click.option("--pixel-size", type=float, default=None, help="Pixel size in Å, overriding the headers.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Other mae settings (architecture, crop_factor, mask_ratio ...).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def pretrain_command(ctx, micrographs, diameter, out, preset, epochs, regions_per_micrograph, batch, lr, pixel_size,
                     settings, device, seed):
    """Pre-train the MAE on random regions of unlabelled micrographs and write its weights (HDF5), for
    ``cryopick run --picker mae --set checkpoint=OUT``."""
    import numpy as np

    from cryopick.cli.context import get_host
    from cryopick.config import config_to_dict, parse_diameter, parse_settings
    from cryopick.fsutil import ensure_writable_file
    from cryopick.io.micrographs import expand_micrographs, read_micrograph
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker
    from cryopick.progress import echo
    from cryopick.stages.preprocess import preprocess_image
    from cryopick.torchutil import seed_everything
    from cryopick.weights import save_weights
    from cryopick_mae.model import count_parameters
    from cryopick_mae.train import model_arrays, model_from_state, pretrain, region_epochs, sample_regions

    paths = [str(p) for p in expand_micrographs(micrographs)]
    ensure_writable_file(out, "--out")  # before the pre-training, not after it
    values = parse_settings(settings)
    # from scratch unless --set checkpoint=... (a file, or builtin) asks to continue from other weights
    values.setdefault("checkpoint", "none")
    if preset:
        values["preset"] = preset
    # the picker exactly as `cryopick run --picker mae` builds it, so that pre-training sees the images
    # picking sees (its own preprocessing chain: downsample, low-pass, normalise)
    picker = make_picker(get_host(ctx), "mae", values, device, seed)
    cfg = picker.config
    device = picker.context.device
    seed_everything(seed)
    rng = np.random.default_rng(seed)

    regions, diameter_pp, window = [], None, None
    for path in paths:
        image, info = read_micrograph(path)
        size = pixel_size or info.pixel_size_a
        d = parse_diameter(diameter, size)
        pre = preprocess_image(picker, np.asarray(image, dtype=np.float32), d, size)
        diameter_pp = d / pre.factor[0]
        window = picker.window_px(diameter_pp)
        regions.append(sample_regions([pre.image], regions_per_micrograph, window, rng))
    regions = np.concatenate(regions)

    state = picker.checkpoint_state()
    model = (model_from_state(state) if state is not None
             else picker.context.load("backbone", "vit-mae")(**picker.architecture()))
    batch = batch or cfg.pretrain_batch
    steps = epochs * -(-len(regions) // min(batch, len(regions)))
    echo(f"mae pretrain: {len(paths)} micrographs, {len(regions)} regions of {window} px, "
         f"{count_parameters(model) / 1e6:.2f} M parameters, {steps} steps on {device}")
    losses = pretrain(model, region_epochs(regions, batch, rng), steps=steps, lr=lr or cfg.pretrain_lr,
                      mask_ratio=cfg.mask_ratio, device=device, window_norm=cfg.window_norm)
    config = {"architecture": dict(model.architecture), "kind": "cryopick-mae/pretrain",
              "picker": config_to_dict(cfg), "diameter_px": diameter_pp, "window_px": window,
              "micrographs": len(paths), "regions": len(regions), "epochs": epochs, "steps": steps,
              "final_loss": losses[-1] if losses else None}
    path = save_weights(out, ModelState(model_arrays(model.cpu()), config))
    click.echo(f"wrote {path} (final reconstruction loss {config['final_loss']:.4f})")
