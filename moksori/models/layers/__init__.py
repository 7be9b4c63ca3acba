"""Building blocks shared by the models (attention, flows, WaveNet stack, masks)."""

from moksori.models.layers.attention import FFN, Encoder, MultiHeadAttention
from moksori.models.layers.common import (
    ConvReluNorm,
    LayerNorm,
    generate_path,
    maximum_path,
    sequence_mask,
    squeeze,
    unsqueeze,
)
from moksori.models.layers.flows import ActNorm, CouplingBlock, InvConvNear
from moksori.models.layers.wavenet import WN

__all__ = [
    "FFN",
    "WN",
    "ActNorm",
    "ConvReluNorm",
    "CouplingBlock",
    "Encoder",
    "InvConvNear",
    "LayerNorm",
    "MultiHeadAttention",
    "generate_path",
    "maximum_path",
    "sequence_mask",
    "squeeze",
    "unsqueeze",
]
