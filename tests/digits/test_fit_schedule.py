"""The shared training loop's learning-rate schedules."""
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


def test_without_validation_the_last_epochs_weights_are_the_model(tmp_path):
    """--validation-split 0: nothing to pick a best epoch with, so no checkpoint and the model
    fit() returns is the one training ended with."""
    import keras
    import numpy as np

    from trainer.fit import FitConfig, fit

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (64, 4, 4, 1)).astype(np.float32), np.arange(64) % 2
    trained = {}

    def build():
        model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
        trained["model"] = model
        return model

    model, history = fit(build, (x, y), (x[:0], y[:0]), 2, tmp_path, FitConfig(epochs=2, batch_size=16))
    assert model is trained["model"]
    assert not (tmp_path / "keras" / "checkpoint.keras").exists()
    assert (tmp_path / "keras" / "model.keras").exists()
    assert len(history["accuracy"]) == 2 and "val_accuracy" not in history


def test_validation_split_accepts_zero_but_not_one():
    import argparse

    from trainer import digits_train

    parser = argparse.ArgumentParser(exit_on_error=False)
    digits_train.add_arguments(parser)
    assert parser.parse_args(["--validation-split", "0"]).validation_split == 0
    with pytest.raises(argparse.ArgumentError, match="not a number >= 0 and < 1"):
        parser.parse_args(["--validation-split", "1"])


def test_a_moving_average_of_the_weights_becomes_the_model(tmp_path):
    """With ema_momentum near 1 the average stays near the weights of the first step (Keras starts it
    there), though 40 steps move the raw ones far; with validation, the averaged weights are the ones
    checkpointed and returned."""
    import keras
    import numpy as np

    from trainer.fit import FitConfig, fit

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (64, 4, 4, 1)).astype(np.float32), np.arange(64) % 2
    def build():
        keras.utils.set_random_seed(1)
        return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    initial = build().get_weights()[0]
    moved = {}
    for ema, validation in ((None, (x[:0], y[:0])), (0.9999, (x[:0], y[:0])), (0.9999, (x[:16], y[:16]))):
        config = FitConfig(epochs=10, batch_size=16, optimizer="sgd", learning_rate=0.5, ema_momentum=ema)
        model, _ = fit(build, (x, y), validation, 2, tmp_path / f"{ema}{len(validation[1])}", config)
        moved[(ema, len(validation[1]))] = float(np.abs(model.get_weights()[0] - initial).max())
    assert moved[(None, 0)] > 0.1
    assert moved[(0.9999, 0)] < moved[(None, 0)] / 5 and moved[(0.9999, 16)] < moved[(None, 0)] / 5
