"""Training data: clean images, real noisy/clean pairs and MNIST, sampled as patches on the training device.

No noise is added here: a task applies its noise model to the clean patches.  Typical use::

    data = build_data([{"kind": "clean", "paths": ["bsd400/*.png"]}], default_data_root(), "gray", "cuda")
    batch = data.batch(64, 96, generator)        # {"x": 64 x 1 x 96 x 96 float32 in [0, 1]}
"""
from .images import (COLORS, EVAL_FOLDERS, MNIST, CleanImages, PairedImages, check_training_path,
                     default_data_root, expand_paths, to_color)
from .sampling import LabeledSampler, Mixture, PairedSampler, PatchSampler
from .sources import SOURCE_KEYS, build_data, build_source, check_source_spec

__all__ = ["COLORS", "EVAL_FOLDERS", "MNIST", "CleanImages", "PairedImages", "check_training_path",
           "default_data_root", "expand_paths", "to_color", "LabeledSampler", "Mixture", "PairedSampler",
           "PatchSampler", "SOURCE_KEYS", "build_data", "build_source", "check_source_spec"]
