"""TFLite Micro on the desktop: arena measurement, batch inference, and parity with LiteRT."""
from __future__ import annotations

import numpy as np
import pytest

from edge.core.errors import BundleError
from edge.core.interpreter import TFLiteModel
from edge.core.flatbuffer import count_macs, read_graph
from export.tflm import ARENA_ALIGNMENT, _allocates, measure_arena_bytes, run_tflm


def test_arena_is_the_smallest_that_allocates(tiny_int8):
    model_bytes, _ = tiny_int8
    arena = measure_arena_bytes(model_bytes)
    assert arena % ARENA_ALIGNMENT == 0
    assert _allocates(model_bytes, arena)
    assert not _allocates(model_bytes, arena - ARENA_ALIGNMENT)


def test_tflm_matches_litert_without_delegates_exactly(tiny_int8):
    model_bytes, inputs = tiny_int8
    litert = TFLiteModel("tiny.tflite", model_bytes=model_bytes, use_xnnpack=False)
    raw = litert.to_raw_input(inputs)
    expected = np.stack([litert.invoke_raw(raw[i : i + 1])[0] for i in range(len(raw))])
    actual = run_tflm(model_bytes, raw)
    assert actual.dtype == np.int8 and actual.shape == (len(inputs), 5)
    np.testing.assert_array_equal(actual, expected)


def test_run_tflm_refuses_wrong_dtype_and_handles_empty(tiny_int8):
    model_bytes, inputs = tiny_int8
    with pytest.raises(BundleError, match="int8"):
        run_tflm(model_bytes, inputs[:2])
    assert run_tflm(model_bytes, np.zeros((0, 12, 12, 1), np.int8)).shape == (0, 5)


def test_flatbuffer_ops_and_macs(tiny_int8):
    graph = read_graph(tiny_int8[0])
    assert {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(graph.op_names)
    assert graph.inputs[0].dtype == "INT8" and graph.inputs[0].shape == (1, 12, 12, 1)
    # conv: 10*10*4 outputs x 3*3*1 taps; dense: 5 x (5*5*4)
    assert count_macs(graph) == 10 * 10 * 4 * 9 + 5 * 100


@pytest.mark.parametrize("data", [b"", b"TFL3", b"not a model at all, definitely not"])
def test_garbage_is_refused_with_a_bundle_error(data):
    with pytest.raises(BundleError):
        read_graph(data)
    with pytest.raises(BundleError):
        measure_arena_bytes(data)


def test_truncated_model_is_refused(tiny_int8):
    with pytest.raises(BundleError, match="unreadable"):
        read_graph(tiny_int8[0][: len(tiny_int8[0]) // 2], "cut.tflite")


def test_dead_model_is_refused_before_tflm_aborts():
    """All-zero logits quantize to a scale TFLM's int8 softmax cannot take: it would abort the
    whole process (QuantizeMultiplierGreaterThanOne). The check names the problem instead."""
    import keras
    import tensorflow as tf

    from edge.core.micro import MicroModel

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, kernel_initializer="zeros"), keras.layers.Softmax()])
    inputs = np.random.default_rng(0).random((20, 8)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([inputs[i : i + 1]] for i in range(len(inputs)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    model_bytes = converter.convert()
    with pytest.raises(BundleError, match="softmax input scale .* below TFLite Micro's minimum"):
        measure_arena_bytes(model_bytes)
    with pytest.raises(BundleError, match="softmax input scale"):
        MicroModel(model_bytes, 4096)
