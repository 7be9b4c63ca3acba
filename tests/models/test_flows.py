"""Invertible layers of the Glow-TTS decoder: exact inverses and log-determinants."""

import pytest
import torch

from moksori.models.glow_tts import FlowSpecDecoder
from moksori.models.layers.common import sequence_mask, squeeze, unsqueeze
from moksori.models.layers.flows import ActNorm, CouplingBlock, InvConvNear


def _mask(lengths, t):
    return sequence_mask(torch.tensor(lengths), t).unsqueeze(1).float()


def _randomize(module: torch.nn.Module, scale: float = 0.3) -> None:
    """Move every parameter off its (often identity) init so the flows do real work."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)


def test_squeeze_layout_and_roundtrip():
    x = torch.arange(2 * 3 * 7, dtype=torch.float32).view(2, 3, 7)
    mask = _mask([7, 5], 7)
    xs, ms = squeeze(x, mask, 2)
    assert xs.shape == (2, 6, 3) and ms.shape == (2, 1, 3)
    # channel k*c + ch of the squeezed tensor is channel ch of frame 2j + k
    assert xs[0, 1 * 3 + 2, 1] == x[0, 2, 3]
    assert xs[0, 0 * 3 + 1, 2] == x[0, 1, 4]
    assert ms[1].tolist() == [[1.0, 1.0, 0.0]]  # 5 frames -> 2 full pairs
    xu, mu = unsqueeze(xs, ms, 2)
    assert xu.shape == (2, 3, 6)
    assert torch.equal(xu, x[:, :, :6] * mu)
    assert mu[1, 0].tolist() == [1, 1, 1, 1, 0, 0]


def test_actnorm_ddi_and_inverse():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 10) * 3 + 2
    mask = _mask([10, 7, 4], 10)
    x = x * mask
    layer = ActNorm(8, ddi=True)
    z, logdet = layer(x, mask)
    valid = mask.bool().expand_as(z)
    z_valid = z.transpose(0, 1)[valid.transpose(0, 1)].view(8, -1)
    assert torch.allclose(z_valid.mean(1), torch.zeros(8), atol=1e-4)
    assert torch.allclose(z_valid.var(1, unbiased=False), torch.ones(8), atol=1e-3)
    assert torch.allclose(logdet, layer.logs.sum() * torch.tensor([10.0, 7.0, 4.0]))
    x_rec, none = layer(z, mask, reverse=True)
    assert none is None
    assert torch.allclose(x_rec, x, atol=1e-4)


def _full_matrix(layer: InvConvNear, channels: int) -> torch.Tensor:
    """The c x c matrix the layer applies at each time step, by feeding it the identity."""
    eye = torch.eye(channels).unsqueeze(-1)  # batch of c one-hot columns, t = 1
    out, _ = layer(eye)
    return out.squeeze(-1).T  # column i = image of e_i


def test_invconvnear_logdet_matches_slogdet_and_inverts():
    torch.manual_seed(0)
    channels, n_split = 16, 4
    layer = InvConvNear(channels, n_split=n_split)
    with torch.no_grad():
        layer.weight.add_(torch.randn(n_split, n_split) * 0.5)  # no longer orthogonal
    x = torch.randn(2, channels, 9)
    mask = _mask([9, 6], 9)
    z, logdet = layer(x, mask)
    full = _full_matrix(layer, channels)
    sign, logabs = torch.linalg.slogdet(full.double())
    assert sign > 0
    expected = logabs.float() * torch.tensor([9.0, 6.0])
    assert torch.allclose(logdet, expected, atol=1e-4)
    # per-frame action equals the full matrix
    assert torch.allclose(z[0, :, 3], full @ x[0, :, 3], atol=1e-5)
    x_rec, _ = layer(z, mask, reverse=True)
    assert torch.allclose(x_rec, x * mask, atol=1e-4)
    layer.store_inverse()
    x_rec2, _ = layer(z, mask, reverse=True)
    assert torch.allclose(x_rec2, x * mask, atol=1e-4)


def test_invconvnear_mixes_only_within_groups():
    layer = InvConvNear(8, n_split=4)
    full = _full_matrix(layer, 8)
    # each channel interacts with exactly n_split channels (its group), including itself
    assert ((full.abs() > 1e-7).sum(0) <= 4).all()


@pytest.mark.parametrize("gin_channels", [0, 6])
def test_coupling_block_inverse_and_logdet(gin_channels):
    torch.manual_seed(0)
    block = CouplingBlock(8, 16, kernel_size=3, dilation_rate=2, n_layers=2, gin_channels=gin_channels)
    _randomize(block)
    x = torch.randn(2, 8, 11)
    mask = _mask([11, 5], 11)
    x = x * mask
    g = torch.randn(2, gin_channels, 1) if gin_channels else None
    z, logdet = block(x, mask, g=g)
    assert z.shape == x.shape and logdet.shape == (2,)
    assert torch.equal(z[:, :4], x[:, :4])  # first half passes through
    assert not torch.allclose(z, x)
    x_rec, _ = block(z, mask, g=g, reverse=True)
    assert torch.allclose(x_rec, x, atol=1e-4)
    block.store_inverse()  # weight norm baked in: same function
    z2, _ = block(x, mask, g=g)
    assert torch.allclose(z2, z, atol=1e-5)


def _decoder(gin_channels=0):
    torch.manual_seed(0)
    dec = FlowSpecDecoder(
        in_channels=4, hidden_channels=16, kernel_size=3, dilation_rate=1, n_blocks=2,
        n_layers=2, n_split=4, n_sqz=2, gin_channels=gin_channels,
    )
    _randomize(dec, 0.2)
    return dec.eval()


def test_decoder_inverse_with_masks_and_odd_lengths():
    dec = _decoder()
    y = torch.randn(3, 4, 13)  # odd: the flow sees 12 frames
    lengths = torch.tensor([13, 9, 4]) // 2 * 2
    y = y[:, :, :12]
    mask = sequence_mask(lengths, 12).unsqueeze(1).float()
    z, logdet = dec(y, mask)
    assert z.shape == (3, 4, 12) and logdet.shape == (3,)
    assert torch.all(z * (1 - mask) == 0)
    y_rec, none = dec(z, mask, reverse=True)
    assert none is None
    assert torch.allclose(y_rec, y * mask, atol=1e-4)
    # padding does not leak into the valid part
    y2 = y.clone()
    y2[1, :, 8:] = 100.0
    z2, logdet2 = dec(y2, mask)
    assert torch.allclose(z2, z, atol=1e-5) and torch.allclose(logdet2, logdet, atol=1e-4)


def test_decoder_inverse_with_speaker_conditioning():
    dec = _decoder(gin_channels=6)
    y = torch.randn(2, 4, 10)
    mask = _mask([10, 6], 10)
    g = torch.randn(2, 6, 1)
    z, _ = dec(y, mask, g=g)
    y_rec, _ = dec(z, mask, g=g, reverse=True)
    assert torch.allclose(y_rec, y * mask, atol=1e-4)
    z_other, _ = dec(y, mask, g=torch.randn(2, 6, 1))
    assert not torch.allclose(z_other, z)


def test_decoder_logdet_equals_jacobian_logdet():
    dec = _decoder().double()
    y = torch.randn(1, 4, 6, dtype=torch.float64)
    mask = torch.ones(1, 1, 6, dtype=torch.float64)

    def f(flat):
        return dec(flat.view(1, 4, 6), mask)[0].reshape(-1)

    jac = torch.autograd.functional.jacobian(f, y.reshape(-1))
    _, logabs = torch.linalg.slogdet(jac)
    _, logdet = dec(y, mask)
    assert torch.allclose(logdet[0], logabs, atol=1e-6)
