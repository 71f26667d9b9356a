"""The training loop every task shares: Keras fit with progress, checkpoints, CSV log and curves.

A task supplies a model builder and arrays; this module owns where things are written:
`out/keras/checkpoint.keras` (best validation accuracy so far), `out/keras/model.keras` (final,
best weights), `out/train_log.csv`, `out/training_curves.png`. Without validation examples there is
no checkpoint to choose: the last epoch's weights are the model.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge.core import plots
from edge.core.fileio import file_mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int = 64
    optimizer: str = "rmsprop"
    learning_rate: float | None = None
    seed: int = 0
    #: "constant", or "cosine": decay the learning rate to 5% of its start over all epochs
    #: (Loshchilov & Hutter 2017, without restarts), which settles into a better minimum.
    schedule: str = "constant"
    #: Momentum of an exponential moving average of the weights (Polyak & Juditsky 1992; Keras
    #: optimizers' `use_ema`), which becomes the model and, with validation, is what is scored and
    #: checkpointed; None trains without one.
    ema_momentum: float | None = None


def make_optimizer(name: str, learning_rate: float | None, schedule: str = "constant", total_steps: int = 0,
                   ema_momentum: float | None = None):
    import keras

    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r} (choose constant or cosine)")
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate or 1e-3, max(total_steps, 1), alpha=0.05)
    optimizers = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r} (choose {', '.join(optimizers)})")
    options = {} if learning_rate is None else {"learning_rate": learning_rate}
    if ema_momentum is not None:
        options.update(use_ema=True, ema_momentum=ema_momentum)
    return optimizers[name](**options)


def save_keras_atomic(model, path: Path) -> Path:
    """model.save writes in place; save next to the target and rename instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.fchmod(fd, file_mode(path))  # not mkstemp's 0600
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def fit(build_model: Callable[[], object], train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray], num_classes: int, out_dir: Path, config: FitConfig,
        augment: Callable | None = None):
    """Train with categorical cross-entropy; returns (model with the best validation accuracy's
    weights, history dict).

    `train` is (x, y) with y label indices (N,) or soft targets (N, num_classes), e.g. a
    distillation teacher's (trainer.kws_distill); `validation`'s y are label indices.

    `augment`, if given, is a Keras layer (or callable on a batch) applied to training batches only.
    An empty `validation` (0 examples) trains on `train` alone and keeps the last epoch's weights
    (their moving average with `config.ema_momentum`).
    """
    import keras
    import tensorflow as tf

    from trainer.device import distribution_strategy
    from trainer.outputs import clear_previous_run

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # the same seed gives the same model, run after run
    out_dir = Path(out_dir)
    (out_dir / "keras").mkdir(parents=True, exist_ok=True)
    clear_previous_run(out_dir)
    strategy = distribution_strategy()
    with strategy.scope():
        model = build_model()
        steps = config.epochs * -(-len(train[1]) // config.batch_size)
        model.compile(optimizer=make_optimizer(config.optimizer, config.learning_rate, config.schedule, steps,
                                               config.ema_momentum),
                      loss="categorical_crossentropy", metrics=["accuracy"])

    def dataset(x, y, training: bool):
        targets = y.astype(np.float32) if y.ndim == 2 else keras.utils.to_categorical(y, num_classes)
        data = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), targets))
        if training:
            data = data.shuffle(min(len(x), 20000), seed=config.seed, reshuffle_each_iteration=True)
        data = data.batch(config.batch_size)
        if training and augment is not None:
            data = data.map(lambda xb, yb: (augment(xb, training=True), yb), num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE)

    checkpoint = out_dir / "keras" / "checkpoint.keras"
    validating = len(validation[1]) > 0
    callbacks = [keras.callbacks.CSVLogger(str(out_dir / "train_log.csv"))]
    if validating:
        if config.ema_momentum is not None:  # validate and checkpoint the averaged weights
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        callbacks.append(keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_accuracy", save_best_only=True))
    else:
        log.warning("%s: no validation examples; the last epoch's weights will be the model", out_dir)
    history = model.fit(dataset(*train, True), validation_data=dataset(*validation, False) if validating else None,
                        epochs=config.epochs, callbacks=callbacks, shuffle=False,
                        verbose=1 if sys.stderr.isatty() else 2)
    if validating:
        model = keras.saving.load_model(checkpoint)
    save_keras_atomic(model, out_dir / "keras" / "model.keras")
    if plots.available():
        plots.training_curves(history.history, out_dir / "training_curves.png", title=out_dir.name)
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}
