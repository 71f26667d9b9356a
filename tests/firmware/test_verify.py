"""`tinysense verify`: LiteRT and TFLite Micro agree on the int8 digits bundle (measured, asserted)."""
from __future__ import annotations

import json

import numpy as np

from edge.core.bundle import Bundle
from edge.cli import main
from edge.core.flatbuffer import read_graph, truncated_model
from edge.core.interpreter import TFLiteModel
from export.tflm import run_tflm
from export.verify import compare_raw, failures, int8_variants, verify_variant


def test_litert_builtin_is_within_1_lsb_of_tflm_and_xnnpack_agrees_on_top1(digits_bundle):
    bundle = Bundle.load(digits_bundle)
    x, y = bundle.eval_data()
    parities, arena = verify_variant(bundle, "int8", x[:300], y[:300])
    by_backend = {p.backend: p for p in parities}
    builtin, xnnpack = by_backend["litert-builtin"], by_backend["litert-xnnpack"]
    assert builtin.max_lsb <= 1 and builtin.mean_lsb < 0.01 and builtin.top1_agreement == 1.0
    assert xnnpack.max_lsb <= 16 and xnnpack.top1_agreement >= 0.99
    assert by_backend["tflm"].max_lsb == 0 and by_backend["tflm"].accuracy > 0.8
    assert arena == bundle.manifest["tflm"]["arena_bytes"]
    assert failures(parities, 1, 16, 0.99) == []


def test_builtin_kernels_match_tflm_exactly_through_the_conv_stack(digits_bundle):
    """The 1-LSB differences start at FULLY_CONNECTED; every conv and pool output is bit-exact."""
    bundle = Bundle.load(digits_bundle)
    model = bundle.open("int8", use_xnnpack=False)
    raw = model.to_raw_input(bundle.eval_data()[0][:100].astype(np.float32))
    graph = read_graph(model.model_bytes)
    first_dense = next(op.index for op in graph.operators if op.name == "FULLY_CONNECTED")
    last_conv_stack = max(op.index for op in graph.operators[:first_dense] if op.outputs[0].dtype == "INT8")
    prefix = truncated_model(model.model_bytes, last_conv_stack + 1)
    litert = TFLiteModel("prefix.tflite", model_bytes=prefix, use_xnnpack=False)
    expected = np.stack([litert.invoke_raw(r[np.newaxis])[0] for r in raw])
    np.testing.assert_array_equal(run_tflm(prefix, raw), expected)


def test_compare_raw_and_tolerances():
    ref = np.array([[10, 0, -5], [0, 9, 1]], np.int8)
    cand = np.array([[10, 2, -5], [0, 9, 12]], np.int8)
    agreement, max_lsb, mean_lsb, per_class = compare_raw(ref, cand)
    assert agreement == 0.5 and max_lsb == 11 and per_class == [0, 2, 11]
    assert np.isclose(mean_lsb, 13 / 6)


def test_cli_writes_json_and_exits_nonzero_past_tolerance(digits_bundle, tmp_path):
    out = tmp_path / "verify.json"
    assert int8_variants(Bundle.load(digits_bundle)) == ["int8"]
    assert main(["-q", "verify", str(digits_bundle), "--limit", "50", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["failures"] == [] and len(report["parity"]) == 3
    assert main(["-q", "verify", str(digits_bundle), "--limit", "50", "--min-agreement", "1.01"]) == 1


def test_cli_refuses_unknown_variant(digits_bundle):
    assert main(["-q", "verify", str(digits_bundle), "--variants", "int4"]) == 2


def test_cli_refuses_a_float_variant(digits_bundle, capsys):
    """LSB parity on float outputs cast to int would pass anything."""
    assert main(["-q", "verify", str(digits_bundle), "--variants", "float32"]) == 2
    assert "float32 has float input or output; verify compares integer variants (int8)" in capsys.readouterr().err
