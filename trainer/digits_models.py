"""The three digit classifiers of the book chapter this project follows, selectable by name.

Every model takes raw 0..255 pixels (28, 28, 1) and rescales inside, so the exported TFLite
model and the runtime agree on the input without a second scaling step.
"""
from __future__ import annotations

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def small():
    """conv 16 -> pool -> conv 32 -> pool -> dense 64 -> dense 10 (the book's first convnet)."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(INPUT_SHAPE), layers.Rescaling(1 / 255),
        layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(NUM_CLASSES, activation="softmax"),
    ], name="digits_small")


def dense():
    """The dense baseline: flatten -> dense 42 -> dense 10 (about 33k parameters)."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(INPUT_SHAPE), layers.Rescaling(1 / 255), layers.Flatten(),
        layers.Dense(42, activation="relu"), layers.Dense(NUM_CLASSES, activation="softmax"),
    ], name="digits_dense")


def large(batch_norm: bool = False):
    """conv 32,32 -> pool -> conv 64,64 -> pool -> dropout .25 -> dense 512 -> dropout .5 -> dense 10;
    with `batch_norm` (`--arch large-bn`), each conv (without bias) and the dense 512 are followed by
    batch normalisation before their ReLU (Ioffe & Szegedy 2015). On full MNIST large-bn reads 99.62 %
    of the test set, float32 and int8 (--augment --optimizer adam --schedule cosine --batch-size 128
    --epochs 30 --validation-split 0; README, digits)."""
    import keras
    from keras import layers

    def unit(kind, size, *shape):
        """kind(size, *shape) with its ReLU, batch-normalised in between when `batch_norm`."""
        if not batch_norm:
            return [kind(size, *shape, activation="relu")]
        return [kind(size, *shape, use_bias=False), layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential([
        keras.Input(INPUT_SHAPE), layers.Rescaling(1 / 255),
        *unit(layers.Conv2D, 32, 3), *unit(layers.Conv2D, 32, 3), layers.MaxPooling2D(2),
        *unit(layers.Conv2D, 64, 3), *unit(layers.Conv2D, 64, 3), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.25), *unit(layers.Dense, 512), layers.Dropout(0.5),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    ], name="digits_large_bn" if batch_norm else "digits_large")


ARCHITECTURES = {"small": small, "dense": dense, "large": large, "large-bn": lambda: large(batch_norm=True)}
#: Epochs measured to reach the targets on full MNIST with RMSprop (small 99.07% at 10, 98.94% at 5).
DEFAULT_EPOCHS = {"small": 10, "dense": 10, "large": 15, "large-bn": 15}


def augmenter(seed: int):
    """Small rotations, shifts and zooms, applied to training batches only (never exported)."""
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
        layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom(0.08, fill_mode="constant", seed=seed + 2),
    ], name="augment")
