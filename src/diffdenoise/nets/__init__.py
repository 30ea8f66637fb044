"""Network registry: every backbone a config or a weights card may name.

``NETS`` maps a name to a lazy ``"module:Class"`` target so that importing this package costs nothing; the
classes are pure ``nn.Module``s (no I/O, no noise, no losses).  Weights cards store the name and the keyword
arguments, and :func:`build_net` rebuilds the module from them.
"""
from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from ..errors import DiffDenoiseError

NETS: dict[str, str] = {
    "unet": "diffdenoise.nets.unet:UNet",
    "dncnn": "diffdenoise.nets.cnn:DnCNN",
    "rednet": "diffdenoise.nets.cnn:REDNet",
    "mwcnn": "diffdenoise.nets.cnn:MWCNN",
    "pridnet": "diffdenoise.nets.cnn:PRIDNet",
}


def get_net_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``; unknown names raise with the list of valid ones."""
    try:
        target = NETS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown net {name!r}; valid: {', '.join(sorted(NETS))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_net(name: str, **kwargs: Any) -> nn.Module:
    """``NETS[name](**kwargs)``; a keyword the class does not take raises a DiffDenoiseError."""
    cls = get_net_class(name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise DiffDenoiseError(f"net {name!r}: {e}") from None
