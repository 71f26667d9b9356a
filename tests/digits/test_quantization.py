"""Quantization regression tests: variants agree with each other, runtimes agree, converter is stable."""
import numpy as np
import pytest

from edge.core.bundle import Bundle
from export.tflm import run_tflm
from tests.digits.make_golden import CALIBRATION, GOLDEN, INPUTS, embedded_images, golden_outputs


@pytest.fixture(scope="module")
def bundle(digits_bundle):
    return Bundle.load(digits_bundle)


@pytest.fixture(scope="module")
def heldout(bundle):
    x, y = bundle.eval_data()
    return x.astype(np.float32), y


def test_int8_agrees_with_float32(bundle, heldout):
    x, y = heldout
    float_top1 = bundle.open("float32").predict(x).argmax(axis=1)
    int8_top1 = bundle.open("int8").predict(x).argmax(axis=1)
    agreement = (float_top1 == int8_top1).mean()
    drop_pp = ((float_top1 == y).mean() - (int8_top1 == y).mean()) * 100
    assert (float_top1 == y).mean() > 0.85, "the test model itself should be well trained"
    assert agreement >= 0.98, f"float32/int8 top-1 agreement {agreement:.4f}"
    assert drop_pp <= 1.0, f"int8 loses {drop_pp:.2f} pp"


@pytest.mark.parametrize("variant", ["float16", "dynamic"])
def test_other_variants_agree_with_float32(bundle, heldout, variant):
    x, _ = heldout
    reference = bundle.open("float32").predict(x[:300]).argmax(axis=1)
    assert (bundle.open(variant).predict(x[:300]).argmax(axis=1) == reference).mean() >= 0.99


def test_keras_and_float32_tflite_match(bundle, heldout):
    import keras

    x, _ = heldout
    keras_out = keras.saving.load_model(bundle.root / "keras" / "model.keras").predict(x[:200], verbose=0)
    np.testing.assert_allclose(bundle.open("float32").predict(x[:200]), keras_out, atol=1e-5)


def test_manifest_accuracy_is_what_the_model_measures(bundle, heldout):
    x, y = heldout
    for variant in bundle.variants:
        measured = (bundle.open(variant).predict(x).argmax(axis=1) == y).mean()
        assert measured == pytest.approx(bundle.variant(variant)["accuracy"], abs=1e-9)


def test_litert_without_delegates_matches_tflite_micro_to_one_lsb(bundle, heldout):
    """Measured (2000 MNIST test images): LiteRT's builtin kernels and TFLM's reference kernels
    differ on 0.02-0.03% of int8 outputs, by 1 LSB for the convnet and up to 4 LSB for the dense
    baseline; never in the top-1 class. Not bit-exact, contrary to what we expected."""
    x, _ = heldout
    model = bundle.open("int8", use_xnnpack=False)
    raw = model.to_raw_input(x[:300])
    litert = np.stack([model.invoke_raw(example[np.newaxis])[0] for example in raw]).astype(int)
    micro = run_tflm(model.model_bytes, raw).astype(int)
    assert np.abs(litert - micro).max() <= 4
    assert (litert != micro).mean() < 0.005
    np.testing.assert_array_equal(litert.argmax(axis=1), micro.argmax(axis=1))


def test_litert_with_xnnpack_is_within_a_few_lsb_of_tflite_micro(bundle, heldout):
    """Measured: XNNPACK differs from TFLM on 0.1-3% of outputs, by up to 13 LSB, top-1 >= 99.8%."""
    x, _ = heldout
    model = bundle.open("int8")  # default delegates (XNNPACK)
    raw = model.to_raw_input(x[:300])
    litert = np.stack([model.invoke_raw(example[np.newaxis])[0] for example in raw]).astype(int)
    micro = run_tflm(model.model_bytes, raw).astype(int)
    assert np.abs(litert - micro).max() <= 16
    assert (litert != micro).mean() < 0.05
    assert (litert.argmax(axis=1) == micro.argmax(axis=1)).mean() >= 0.99


def test_converter_output_matches_the_golden_record():
    """A converter or kernel change that moves any int8 output by one LSB fails here."""
    import keras

    golden = np.load(GOLDEN / "outputs.npz")
    np.testing.assert_array_equal(golden["inputs"], INPUTS)
    np.testing.assert_array_equal(golden["calibration"], CALIBRATION)
    outputs = golden_outputs(keras.saving.load_model(GOLDEN / "small.keras"))
    np.testing.assert_array_equal(outputs["int8"], golden["int8"])
    np.testing.assert_allclose(outputs["float32"], golden["float32"], atol=1e-6)
    _, labels = embedded_images()
    assert (golden["int8"].argmax(axis=1) == labels[INPUTS]).mean() >= 0.9


def test_quantize_rounds_and_clips_like_tflite():
    from edge.core.quant import dequantize, quantize

    model_input = np.array([-1000.0, -0.5, 0.49, 0.5, 1.5, 1000.0])
    np.testing.assert_array_equal(quantize(model_input, 1.0, 0, np.int8), [-128, -1, 0, 1, 2, 127])
    np.testing.assert_array_equal(quantize([0.0, 0.5, 255.0], 1.0, -128, np.int8), [-128, -127, 127])
    np.testing.assert_allclose(dequantize(np.array([-128, 127], np.int8), 0.5, -128), [0.0, 127.5])
