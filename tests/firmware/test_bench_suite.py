"""The benchmark suite: backends, thread sweep, op profile, MAC efficiency, peer, Markdown and chart."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge.bench.suite import matmul_macs_per_s, peer, profile_ops, stream_audio
from edge.cli import main
from edge.core.flatbuffer import read_graph, truncated_model
from edge.core.interpreter import TFLiteModel


@pytest.fixture(scope="module")
def suite_report(digits_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    args = ["-q", "bench", str(digits_bundle), "--variants", "int8,float32", "--runs", "30", "--warmup", "3",
            "--limit", "200", "--suite", "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--chart", str(out / "r.png")]
    assert main(args) == 0
    return json.loads((out / "r.json").read_text()), (out / "r.md").read_text(), out / "r.png"


def test_report_records_machine_and_every_backend(suite_report):
    report, _, _ = suite_report
    assert report["machine"]["cores"] >= 1 and "ai-edge-litert" in report["machine"]["versions"]
    backends = report["backends"]
    for name in ("litert-xnnpack", "litert-builtin", "tflm"):
        assert backends[name]["available"] and backends[name]["latency_ms"]["p50"] > 0
    assert backends["tflm"]["vs_tflm"]["max_lsb"] == 0
    assert backends["litert-builtin"]["vs_tflm"]["max_lsb"] <= 1
    assert backends["tflite-runtime"]["available"] is False and "numpy" in backends["tflite-runtime"]["reason"]
    assert backends["edgetpu"]["available"] is False and "libedgetpu.so.1" in backends["edgetpu"]["reason"]


def test_report_has_sweep_profile_and_mac_efficiency(suite_report):
    report, markdown, chart = suite_report
    assert set(report["thread_sweep_p50_ms"]) == {"int8", "float32"}
    assert "1" in report["thread_sweep_p50_ms"]["int8"]
    ops = report["op_profile"]["ops"]
    assert ops[0]["op"] in ("CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D") and abs(sum(op["share"] for op in ops) - 1) < 1e-6
    int8 = report["variants"]["int8"]
    assert int8["macs_per_inference"] > 100_000 and 0 < int8["fraction_of_matmul_peak"] < 1
    for heading in ("## Variants", "## Backends", "## Threads", "## Top operators"):
        assert heading in markdown
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_truncated_model_keeps_results_and_profile_covers_every_op(tiny_int8):
    model_bytes, inputs = tiny_int8
    graph = read_graph(model_bytes)
    full = TFLiteModel("full", model_bytes=model_bytes, use_xnnpack=False)
    cut = TFLiteModel("cut", model_bytes=truncated_model(model_bytes, len(graph.operators)), use_xnnpack=False)
    raw = full.to_raw_input(inputs[:4])
    for example in raw:
        np.testing.assert_array_equal(cut.invoke_raw(example[None]), full.invoke_raw(example[None]))
    first = TFLiteModel("first", model_bytes=truncated_model(model_bytes, 1), use_xnnpack=False)
    assert first.output_detail["shape"].tolist() == list(graph.operators[0].outputs[0].shape)
    ops = profile_ops(model_bytes, raw, runs=10)
    assert sorted(op["index"] for op in ops) == list(range(len(graph.operators)))


def test_matmul_probe_and_peer_measure_something():
    assert matmul_macs_per_s(size=64, seconds=0.05)["macs_per_s"] > 1e6
    result = peer(stream_audio(1.0), runs=10, warmup=2)
    assert result["rtf"] > 0 and result["macs_per_inference"] > 0 and result["size_bytes"] > 10_000
    assert result["inferences_per_audio_s"] == pytest.approx(100 / 3)
