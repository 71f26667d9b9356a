"""The edge KWS architectures stay inside issue 3's budget: TFLite Micro arena <= 32 KB, every
operator mapped by the Edge TPU compiler and TFLite Micro, int8 weights well under 64 KB."""
from __future__ import annotations

import numpy as np
import pytest

from edge.core.flatbuffer import read_graph
from export.convert import convert
from export.edgetpu import check_graph, first_fallback
from export.tflm import measure_arena_bytes
from trainer.kws_models import ARCHITECTURES


@pytest.mark.parametrize("arch", ["ds-cnn", "ds-cnn-l"])
def test_edge_architecture_fits_a_microcontroller(arch):
    import keras

    keras.utils.set_random_seed(0)
    model = ARCHITECTURES[arch]((98, 40, 1), 12)
    representative = np.random.default_rng(0).uniform(0, 26, (16, 98, 40, 1)).astype(np.float32)
    model_bytes = convert(model, "int8", representative)
    assert model.count_params() < 48_000  # one byte each in int8, plus per-channel scales and biases
    assert len(model_bytes) <= 64 * 1024
    assert measure_arena_bytes(model_bytes) <= 32 * 1024
    graph = read_graph(model_bytes)
    assert first_fallback(check_graph(graph)) is None
    assert set(graph.op_names) == {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
