"""The shared training loop: learning-rate schedules and mixup."""
from __future__ import annotations

import pytest

from trainer.fit import make_optimizer


def test_cosine_schedule_decays_to_five_percent():
    optimizer = make_optimizer("adam", 0.01, "cosine", total_steps=100)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5), rel=1e-4)
    assert float(schedule(100)) == pytest.approx(0.0005)
    assert float(make_optimizer("adam", 0.01).learning_rate) == pytest.approx(0.01)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        make_optimizer("adam", 0.01, "step", total_steps=10)


def test_mixup_blends_examples_and_targets_with_the_same_weight():
    import numpy as np
    import tensorflow as tf

    from trainer.fit import mix_batch

    tf.random.set_seed(1)
    targets = np.eye(4)[np.arange(64) % 4]  # float64 like keras.utils.to_categorical
    mixed_x, mixed_y = mix_batch(tf.constant(targets, tf.float32), tf.constant(targets), 0.3)
    mixed_x, mixed_y = mixed_x.numpy(), mixed_y.numpy()
    assert mixed_y.dtype == np.float64 and mixed_x.dtype == np.float32
    np.testing.assert_allclose(mixed_x, mixed_y, atol=1e-6)  # the input here is its own target
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0)
    blended = (mixed_y > 0).sum(axis=1) == 2
    assert 10 < blended.sum() < 64  # many pairs of different classes blend; a partner of the same class cannot show
