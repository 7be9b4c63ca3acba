"""Monotonic alignment search, duration paths and the prior log-likelihood matrix."""

import itertools
import math

import pytest
import torch

from moksori.models.glow_tts import prior_log_likelihood
from moksori.models.layers.common import generate_path, maximum_path, sequence_mask


def brute_force_path(value: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Best monotonic alignment of a [t_x, t_y] score matrix by enumerating all of them."""
    t_x, t_y = value.shape
    best, best_score = None, -math.inf
    # choose the t_x - 1 frames (after the first) at which the token index steps up by one
    for steps in itertools.combinations(range(1, t_y), t_x - 1):
        token, tokens = 0, []
        for j in range(t_y):
            if j in steps:
                token += 1
            tokens.append(token)
        score = sum(float(value[tokens[j], j]) for j in range(t_y))
        if score > best_score:
            best, best_score = tokens, score
    path = torch.zeros(t_x, t_y)
    path[best, torch.arange(t_y)] = 1
    return path, best_score


def assert_monotonic(path: torch.Tensor, t_x: int, t_y: int) -> None:
    valid = path[:t_x, :t_y]
    assert path.sum() == valid.sum()  # nothing outside the lengths
    assert torch.all(valid.sum(0) == 1)  # every frame -> exactly one token
    assert torch.all(valid.sum(1) >= 1)  # every token gets a frame
    tokens = valid.argmax(0)
    assert tokens[0] == 0 and tokens[-1] == t_x - 1
    steps = tokens[1:] - tokens[:-1]
    assert torch.all((steps == 0) | (steps == 1))


@pytest.mark.parametrize("seed", range(6))
def test_mas_equals_brute_force_on_padded_batch(seed):
    gen = torch.Generator().manual_seed(seed)
    t_x_max, t_y_max = 4, 7
    x_lengths = torch.randint(1, t_x_max + 1, (4,), generator=gen)
    x_lengths[0] = t_x_max
    y_lengths = torch.stack([torch.randint(int(n), t_y_max + 1, (1,), generator=gen)[0] for n in x_lengths])
    y_lengths[0] = t_y_max
    value = torch.randn(4, t_x_max, t_y_max, generator=gen) * 3
    mask = sequence_mask(x_lengths, t_x_max).unsqueeze(2) & sequence_mask(y_lengths, t_y_max).unsqueeze(1)
    path = maximum_path(value, mask.float())
    assert path.shape == value.shape
    for b in range(4):
        t_x, t_y = int(x_lengths[b]), int(y_lengths[b])
        assert_monotonic(path[b], t_x, t_y)
        expected, best = brute_force_path(value[b, :t_x, :t_y])
        assert torch.equal(path[b, :t_x, :t_y], expected)
        assert math.isclose(float((path[b] * value[b]).sum()), best, rel_tol=1e-5, abs_tol=1e-4)


def test_mas_follows_an_obvious_diagonal():
    # scores favour token i on frames [2i, 2i+2): the search must recover exactly that
    value = torch.full((1, 3, 6), -10.0)
    for i in range(3):
        value[0, i, 2 * i : 2 * i + 2] = 0.0
    path = maximum_path(value, torch.ones_like(value))
    assert path[0].sum(1).tolist() == [2, 2, 2]
    assert path[0].argmax(0).tolist() == [0, 0, 1, 1, 2, 2]


def test_generate_path_from_durations():
    duration = torch.tensor([[2.0, 1.0, 3.0], [1.0, 2.0, 0.0]])
    mask = torch.ones(2, 3, 6)
    mask[1, 2] = 0
    path = generate_path(duration, mask)
    assert path[0].argmax(0).tolist() == [0, 0, 1, 2, 2, 2]
    assert path[0].sum().item() == 6
    assert path[1].sum(1).tolist() == [1, 2, 0]
    assert path[1, :, 3:].sum() == 0


def test_prior_log_likelihood_matches_gaussian_density():
    torch.manual_seed(0)
    z = torch.randn(2, 5, 7)
    x_m = torch.randn(2, 5, 3)
    x_logs = torch.randn(2, 5, 3) * 0.3
    logp = prior_log_likelihood(z, x_m, x_logs)
    assert logp.shape == (2, 3, 7)
    normal = torch.distributions.Normal(x_m.unsqueeze(-1), torch.exp(x_logs).unsqueeze(-1))
    expected = normal.log_prob(z.unsqueeze(2)).sum(1)  # [b, t_x, t_y]
    assert torch.allclose(logp, expected, atol=1e-4)
