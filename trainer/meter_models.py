"""The meter-digit classifier: a small convnet on 32x20 grey crops, one output per tenth.

Sized for an ESP32-class device (about 100k parameters, an int8 model near 110 KB) like the
digit models of AI-on-the-edge-device, which run 20x32 crops through a few conv/pool stages.
It takes raw 0..255 pixels and rescales inside, as every tinysense image model does.
"""
from __future__ import annotations

from edge.seeing.meter import HEIGHT, TENTHS, WIDTH

INPUT_SHAPE = (HEIGHT, WIDTH, 1)


def small():
    """3 x (conv 3x3 -> batch norm -> ReLU -> max pool 2) with 16/32/64 filters, dense 128, dense 100."""
    import keras
    from keras import layers

    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                layers.ReLU(), layers.MaxPooling2D(2)]

    return keras.Sequential([
        keras.Input(INPUT_SHAPE), layers.Rescaling(1 / 255), *block(16), *block(32), *block(64),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(128, activation="relu"),
        layers.Dense(TENTHS, activation="softmax"),
    ], name="meter_small")


ARCHITECTURES = {"small": small}


#: Zoom of training batches, height and width drawn apart (fractions; negative zooms in). Region
#: boxes are drawn 0.35 to 0.84 times as wide as high on real meters, and every crop is stretched to
#: 20 x 32, so a digit's aspect varies from meter to meter. On the meter_digits dev split (photos +
#: 8000 renders, int8) the width's own zoom moved wheels between two digits from 96.28 % (seed 0) to
#: 97.54 / 98.18 / 98.02 % (seeds 0 / 1 / 2), and clean digits from 99.25 % to 98.34 / 98.71 / 98.61 %
#: (the altair meter's flagged 1s read as 7s).
ZOOM_HEIGHT, ZOOM_WIDTH = (-0.08, 0.08), (-0.2, 0.2)


def augmenter(seed: int):
    """Training-batch jitter that keeps the value: small shifts (vertical ones under a third of a
    tenth's travel, which is about 3 px of 32), zoom (`ZOOM_HEIGHT`, `ZOOM_WIDTH`), brightness and
    contrast. Never exported."""
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomTranslation(0.03, 0.1, fill_mode="nearest", seed=seed),
        layers.RandomZoom(ZOOM_HEIGHT, ZOOM_WIDTH, fill_mode="nearest", seed=seed + 1),
        layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 2),
        layers.RandomContrast(0.3, value_range=(0, 255), seed=seed + 3),
    ], name="augment")
