"""The direct TFLite writer's walk over macro (MobileNet-block) networks: FBNet and NAS-Bench-Macro."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwdiffnas.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from export.tflite.flatbuffer import _Writer


def _sequence(w: _Writer, mods: list[nn.Module], v: tuple) -> tuple:
    """Conv2d [+ BatchNorm2d] [+ ReLU] groups, channel shuffles, identities and residual blocks, in order."""
    from torch import nn

    from hwdiffnas.spaces.modules import channel_shuffle_class

    shuffle = channel_shuffle_class()
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d):
            bn = mods[i + 1] if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d) else None
            j = i + 1 + (bn is not None)
            relu = j < len(mods) and isinstance(mods[j], nn.ReLU)
            v = w.conv(v, m, bn, relu=relu)
            i = j + relu
            continue
        if isinstance(m, shuffle):
            v = w.channel_shuffle(v, m.groups)
        elif isinstance(m, nn.Sequential):
            v = _sequence(w, list(m), v)
        elif isinstance(m, nn.Identity):
            pass
        elif hasattr(m, "body") and hasattr(m, "residual"):
            out = _sequence(w, [m.body], v)
            v = w.add(out, v) if m.residual else out
        else:
            raise UserError(f"the direct TFLite converter cannot write a {type(m).__name__} layer")
        i += 1
    return v


def macro_features(w: _Writer, model: nn.Module, v: tuple) -> tuple:
    """Stem, layers and head of a macro network (the value entering the global pool)."""
    return _sequence(w, [model[0], model[1], model[2]], v)
