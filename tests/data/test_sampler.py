import random

import pytest

from moksori.data.dataset import LengthBucketSampler


def lengths(n=203, seed=0):
    rng = random.Random(seed)
    return [rng.randint(20, 900) for _ in range(n)]


def flat(batches):
    return [index for batch in batches for index in batch]


@pytest.mark.parametrize("boundaries", [None, [0, 100, 300, 600, 1000]])
def test_every_index_exactly_once_per_epoch(boundaries):
    sampler = LengthBucketSampler(lengths(), batch_size=8, boundaries=boundaries, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(flat(batches)) == list(range(203))
        assert len(batches) == len(sampler)
        assert all(1 <= len(batch) <= 8 for batch in batches)


def test_batches_hold_similar_lengths():
    values = lengths(400)
    sampler = LengthBucketSampler(values, batch_size=8, bucket_size_multiplier=25, seed=1)
    spreads = [max(values[i] for i in b) - min(values[i] for i in b) for b in sampler]
    random_batches = [list(range(start, start + 8)) for start in range(0, 400, 8)]
    random_spreads = [max(values[i] for i in b) - min(values[i] for i in b) for b in random_batches]
    assert sum(spreads) / len(spreads) < 0.2 * sum(random_spreads) / len(random_spreads)


def test_bucket_boundaries_keep_batches_inside_a_bucket():
    values = lengths(300)
    bounds = [0, 200, 400, 700, 1000]
    sampler = LengthBucketSampler(values, batch_size=6, boundaries=bounds, seed=2)
    for batch in sampler:
        buckets = {next(k for k in range(4) if values[i] <= bounds[k + 1]) for i in batch}
        assert len(buckets) == 1


def test_shuffle_depends_on_epoch_and_seed_only():
    values = lengths()
    a = LengthBucketSampler(values, 8, seed=5)
    b = LengthBucketSampler(values, 8, seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(LengthBucketSampler(values, 8, seed=6)) != list(b)
    fixed = LengthBucketSampler(values, 8, shuffle=False)
    assert list(fixed) == list(LengthBucketSampler(values, 8, shuffle=False))


def test_drop_last_gives_only_full_batches():
    sampler = LengthBucketSampler(lengths(), batch_size=8, drop_last=True)
    batches = list(sampler)
    assert all(len(batch) == 8 for batch in batches)
    assert len(set(flat(batches))) == len(flat(batches))


@pytest.mark.parametrize("boundaries", [None, [0, 300, 600, 1000]])
def test_two_ranks_get_disjoint_equal_halves(boundaries):
    values = lengths(200)
    ranks = [
        LengthBucketSampler(values, 8, boundaries=boundaries, seed=9, num_replicas=2, rank=r) for r in range(2)
    ]
    for epoch in range(2):
        for sampler in ranks:
            sampler.set_epoch(epoch)
        first, second = (list(sampler) for sampler in ranks)
        assert len(first) == len(second)
        assert set(flat(first)).isdisjoint(flat(second))
        assert set(flat(first)) | set(flat(second)) == set(range(200))
        assert len(set(flat(first))) == len(set(flat(second))) == 100


def test_uneven_ranks_still_run_the_same_number_of_steps():
    values = lengths(101)
    samplers = [LengthBucketSampler(values, 4, boundaries=[0, 300, 1000], num_replicas=3, rank=r) for r in range(3)]
    counts = [len(list(s)) for s in samplers]
    assert len(set(counts)) == 1
    assert set().union(*(flat(s) for s in samplers)) == set(range(101))


def test_bad_arguments():
    with pytest.raises(ValueError):
        LengthBucketSampler([1, 2], batch_size=0)
    with pytest.raises(ValueError):
        LengthBucketSampler([1, 2], batch_size=2, num_replicas=2, rank=2)
    with pytest.raises(ValueError):
        LengthBucketSampler([1, 2], batch_size=2, boundaries=[5, 1])
