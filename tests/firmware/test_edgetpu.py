"""Edge TPU readiness: the rules, the first CPU fallback, the compiler hook, and the runtime error."""
from __future__ import annotations

import os
import subprocess
import sys
import stat

import pytest

from edge.cli import main
from edge.core.interpreter import DeviceError, TFLiteModel
from export.edgetpu import check_graph, first_fallback
from edge.core.flatbuffer import ModelGraph, Operator, Tensor, read_graph


def tensor(index, dtype="INT8", shape=(1, 8), signature=None, constant=False):
    return Tensor(index, f"t{index}", dtype, shape, signature or shape, (0.1,), (0,), constant)


def graph_of(*ops):
    return ModelGraph(tuple(ops), ops[0].inputs[:1], ops[-1].outputs)


def test_first_unsupported_op_is_the_fallback():
    ops = [Operator(0, "FULLY_CONNECTED", False, (tensor(0), tensor(1, constant=True), tensor(2, "INT32", (8,), constant=True)), (tensor(3),)),
           Operator(1, "GELU", False, (tensor(3),), (tensor(4),)),
           Operator(2, "SOFTMAX", False, (tensor(4),), (tensor(5),))]
    verdicts = check_graph(graph_of(*ops))
    assert [bool(v.problems) for v in verdicts] == [False, True, False]
    assert first_fallback(verdicts).op.name == "GELU"


@pytest.mark.parametrize("bad, reason", [
    (tensor(1, "FLOAT32"), "not 8-bit"),
    (tensor(1, "INT32"), "not 8-bit"),
    (tensor(1, signature=(-1, 8)), "dynamic shape"),
    (tensor(1, shape=(2, 4, 4, 4)), "more than 3 dimensions"),
])
def test_tensor_rules(bad, reason):
    verdict = check_graph(graph_of(Operator(0, "RELU", False, (tensor(0),), (bad,))))[0]
    assert any(reason in problem for problem in verdict.problems)


def test_keras_default_export_falls_back_at_the_dynamic_batch(tiny_int8):
    verdicts = check_graph(read_graph(tiny_int8[0]))
    fallback = first_fallback(verdicts)
    assert fallback.op.index == 0 and "dynamic shape" in fallback.problems[0]


def test_cli_reports_and_runs_the_compiler_when_installed(digits_bundle, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "edgetpu_compiler"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "fake compiler: $@"\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    status = main(["edgetpu-check", str(digits_bundle), "--out", str(tmp_path / "tpu")])
    out = capsys.readouterr().out
    assert "would run on the Edge TPU" in out
    assert "fake compiler: --show_operations --out_dir" in out and str(tmp_path / "tpu") in out
    assert status == (0 if "meets the Edge TPU rules" in out else 1)


def test_edgetpu_device_without_libedgetpu_is_one_clear_error(tiny_int8):
    with pytest.raises(DeviceError, match="libedgetpu.so.1"):
        TFLiteModel("tiny.tflite", model_bytes=tiny_int8[0], device="edgetpu")


def test_edgetpu_failure_leaves_no_traceback_at_exit(tiny_int8, tmp_path):
    """LiteRT's Delegate.__del__ used to print 'Exception ignored in' when the interpreter exits."""
    (tmp_path / "tiny.tflite").write_bytes(tiny_int8[0])
    code = ("from edge.core.interpreter import DeviceError, TFLiteModel\n"
            "try:\n    TFLiteModel(r'%s', device='edgetpu')\nexcept DeviceError as exc:\n    print(exc)\n"
            % (tmp_path / "tiny.tflite"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "libedgetpu.so.1" in done.stdout
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_missing_bundle_is_one_clear_error(tmp_path, capsys):
    assert main(["edgetpu-check", str(tmp_path / "nope")]) == 2
    assert "no such model bundle folder" in capsys.readouterr().err
