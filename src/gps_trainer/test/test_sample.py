"""Samples and sample batches."""

import numpy as np
import pytest

from gps_trainer.sample import Sample, SampleBatch


def test_batch_stacks_and_splits_by_condition():
    X, U = np.zeros((4, 6, 3)), np.ones((4, 6, 2))
    batch = SampleBatch.from_arrays(X, U, condition=[0, 1, 0, 1], noise=np.zeros((4, 6, 2)))
    assert batch.X.shape == (4, 6, 3) and batch.U.shape == (4, 6, 2)
    assert batch.obs is None and batch.noise.shape == (4, 6, 2)
    assert list(batch.for_condition(1).conditions) == [1, 1]
    assert len(batch + batch) == 8 and len(batch.last(3)) == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(X=np.zeros((5, 3)), U=np.zeros((4, 2))), "U: expected 5 time steps"),
    (dict(X=np.zeros((5, 3)), U=np.zeros((5, 2)), noise=np.zeros((5, 3))), "noise: expected"),
    (dict(X=np.full((5, 3), np.inf), U=np.zeros((5, 2))), "X: contains non-finite"),
    (dict(X=np.zeros((5, 3)), U=np.zeros((5, 2)), condition=-1), "condition"),
])
def test_sample_validation_names_the_field(kwargs, message):
    kwargs.setdefault("condition", 0)
    with pytest.raises(ValueError, match=message):
        Sample(**kwargs)


def test_batch_rejects_mixed_shapes():
    a = Sample(np.zeros((5, 3)), np.zeros((5, 2)), 0)
    b = Sample(np.zeros((6, 3)), np.zeros((6, 2)), 0)
    with pytest.raises(ValueError, match=r"samples\[1\]"):
        SampleBatch((a, b))
