"""cryopick-core's own components, registered through the same hooks as any plugin."""

from __future__ import annotations

from cryopick.entries import PickerEntry, PreprocessorEntry, ThresholderEntry
from cryopick.hookspecs import hookimpl


@hookimpl
def cryopick_register_preprocessors():
    return [
        PreprocessorEntry("downsample", "cryopick.preprocess:Downsample",
                          "Fourier-crop downsampling by a factor or to a target pixel size", pixel_size=True),
        PreprocessorEntry("normalize", "cryopick.preprocess:Normalize",
                          "affine normalisation to zero mean, unit variance (robust=true: median/MAD)"),
        PreprocessorEntry("lowpass", "cryopick.preprocess:Lowpass", "Gaussian low-pass filter"),
    ]


@hookimpl
def cryopick_register_thresholders():
    return [
        ThresholderEntry("fixed", "cryopick.threshold:Fixed", "keep scores >= value (fixed:VALUE)"),
        ThresholderEntry("topk", "cryopick.threshold:TopK", "keep the k best candidates per micrograph (topk:K)",
                         parameter="k", parameter_type="int", scope="micrograph"),
        ThresholderEntry("otsu", "cryopick.threshold:Otsu", "Otsu's two-class histogram cut (otsu:BINS)",
                         parameter="bins", parameter_type="int"),
        ThresholderEntry("density", "cryopick.threshold:Density",
                         "CryoMAE density cut-off: largest change of mean kNN score distance (density:K)",
                         parameter="k", parameter_type="int", scope="micrograph"),
    ]


@hookimpl
def cryopick_register_exporters():
    from cryopick.io.registry import EXPORTERS

    return list(EXPORTERS)


@hookimpl
def cryopick_register_importers():
    from cryopick.io.registry import IMPORTERS

    return list(IMPORTERS)


@hookimpl
def cryopick_register_pickers():
    return [PickerEntry("dog", "cryopick.pickers.dog:DoGPicker",
                        "difference of Gaussians + non-maximum suppression (classical, no training, no torch)")]
