"""Firmware assets: generated from a real bundle, regenerated from their own bytes, compiled with g++."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.core.bundle import Bundle
from edge.cli import main
from export.firmware import ARENA_MARGIN, check, op_method, parse_c_array
from edge.core.flatbuffer import read_graph
from export.tflm import run_tflm


@pytest.fixture(scope="module")
def digits_assets(digits_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("firmware") / "digits"
    assert main(["-q", "firmware", str(digits_bundle), "--out", str(out), "--vectors", "2"]) == 0
    return out


@pytest.fixture
def assets_copy(digits_assets, tmp_path):
    return shutil.copytree(digits_assets, tmp_path / "digits")


def test_generated_files_describe_the_model(digits_bundle, digits_assets):
    bundle = Bundle.load(digits_bundle)
    model_bytes = bundle.variant_path("int8").read_bytes()
    data = (digits_assets / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_digits_model_data[]" in data
    assert bytes(parse_c_array(data, "g_digits_model_data", digits_assets)) == model_bytes
    assert f"g_digits_model_data_size = {len(model_bytes)};" in data
    sha = bundle.variant("int8")["sha256"]
    for path in digits_assets.iterdir():
        if path.suffix in (".h", ".cc"):
            assert f"Model sha256 {sha}" in path.read_text().splitlines()[1], path.name
    labels = (digits_assets / "labels.h").read_text()
    assert all(f'"{label}"' in labels for label in bundle.labels)
    settings = (digits_assets / "model_settings.h").read_text()
    measured = int(re.search(r"kTensorArenaMeasured = (\d+);", settings).group(1))
    reserved = int(re.search(r"kTensorArenaSize = (\d+);", settings).group(1))
    assert measured == bundle.manifest["tflm"]["arena_bytes"]
    assert reserved % 1024 == 0 and reserved >= measured * (1 + ARENA_MARGIN)
    scale = bundle.variant("int8")["input"]["scale"]
    assert f"kInputScale = {np.float32(scale)!r}f" in settings or f"kInputScale = {scale!r}f" in settings


def test_op_resolver_registers_exactly_the_model_ops(digits_bundle, digits_assets):
    ops = read_graph(Bundle.load(digits_bundle).variant_path("int8").read_bytes()).op_names
    registered = re.findall(r"resolver\.(Add\w+)\(\)", (digits_assets / "op_resolver.h").read_text())
    assert sorted(registered) == sorted(op_method(op) for op in ops)
    assert "MicroMutableOpResolver<kOpCount>" in (digits_assets / "op_resolver.h").read_text()
    assert op_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D" and op_method("MAX_POOL_2D") == "AddMaxPool2D"


def test_test_vectors_are_what_tflm_outputs(digits_bundle, digits_assets):
    model_bytes = Bundle.load(digits_bundle).variant_path("int8").read_bytes()
    text = (digits_assets / "test_vectors.cc").read_text()
    inputs = np.array(parse_c_array(text, "kTestInputs", digits_assets), dtype=np.int8).reshape(2, 28, 28, 1)
    expected = np.array(parse_c_array(text, "kTestExpectedOutputs", digits_assets)).reshape(2, -1)
    np.testing.assert_array_equal(run_tflm(model_bytes, inputs), expected)
    assert parse_c_array(text, "kTestExpectedTop1", digits_assets) == expected.argmax(axis=1).tolist()


def test_check_passes_on_fresh_assets_and_compiles(digits_assets, capsys):
    assert check(digits_assets) == []
    assert main(["firmware", "--check", str(digits_assets)]) == 0
    assert "sources compile" in capsys.readouterr().out


def test_check_fails_on_drift(assets_copy):
    settings = assets_copy / "model_settings.h"
    settings.write_text(settings.read_text().replace("kTensorArenaSize = ", "kTensorArenaSize = 1 + "))
    problems = check(assets_copy)
    assert len(problems) == 1 and "model_settings.h: differs" in problems[0]
    assert main(["firmware", "--check", str(assets_copy)]) == 1


def test_check_fails_on_wrong_op_list_and_on_compile_errors(assets_copy):
    resolver = assets_copy / "op_resolver.h"
    resolver.write_text(resolver.read_text().replace("AddSoftmax", "AddLogistic"))
    vectors = assets_copy / "test_vectors.cc"
    vectors.write_text(vectors.read_text() + "\nint unused_function() { int x; return 0; }\n")
    problems = "\n".join(check(assets_copy))
    assert "op_resolver.h: registers" in problems and "AddLogistic" in problems
    assert "test_vectors.cc: does not compile" in problems


def test_check_refuses_folder_without_record(tmp_path):
    assert main(["firmware", "--check", str(tmp_path)]) == 2
    assert main(["firmware", "--check", str(tmp_path / "nope")]) == 2


def test_record_holds_what_regeneration_needs(digits_assets):
    record = json.loads((digits_assets / "firmware.json").read_text())
    assert record["name"] == "digits" and record["variant"] == "int8" and len(record["labels"]) == 10


def test_float_variant_is_refused_with_one_line(digits_bundle, tmp_path, capsys):
    assert main(["firmware", str(digits_bundle), "--variant", "float32", "--out", str(tmp_path)]) == 2
    assert "integer model" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_committed_firmware_assets_have_not_drifted():
    """CI: every committed firmware_assets/<name>/ regenerates byte for byte and compiles."""
    root = Path(__file__).resolve().parents[2] / "firmware_assets"
    for asset_dir in sorted(path.parent for path in root.glob("*/firmware.json")):
        assert check(asset_dir) == [], asset_dir


@pytest.mark.parametrize("warm", [False, True])
def test_kws_audio_vector_runs_the_front_end_and_survives_regeneration(tiny_kws_int8, tmp_path, warm):
    from edge.hearing.frontend import Frontend, FrontendParams
    from edge.core.interpreter import TFLiteModel
    from export.firmware import generate, synthetic_clip, write_files

    model_bytes, inputs = tiny_kws_int8
    model = TFLiteModel("kws.tflite", model_bytes=model_bytes)
    source = {"name": "kws", "task": "kws", "variant": "int8", "file": "model_int8.tflite",
              "labels": ["a", "b", "c", "d", "e"], "input": {"shape": [98, 40, 1]},
              "frontend": FrontendParams(clip_warmup=warm).to_dict()}
    audio = synthetic_clip(16000)
    files = generate(model_bytes, source, model.to_raw_input(inputs[:1]), audio)
    assert "constexpr int kFrontendStepMs = 10;" in files["model_settings.h"]
    assert f"constexpr bool kFrontendClipWarmup = {str(warm).lower()};" in files["model_settings.h"]
    write_files(tmp_path, files)
    text = files["test_audio.cc"]
    assert parse_c_array(text, "kTestAudio", tmp_path) == audio.tolist()
    expected_input = model.to_raw_input(Frontend(FrontendParams(clip_warmup=warm)).clip_features(audio)[np.newaxis, ..., np.newaxis])
    assert parse_c_array(text, "kTestAudioInput", tmp_path) == expected_input.reshape(-1).tolist()
    assert np.ptp(expected_input.astype(int)) > 10  # the clip lights up the features, not a constant input
    assert parse_c_array(text, "kTestAudioExpectedOutput", tmp_path) == run_tflm(model_bytes, expected_input)[0].tolist()
    assert check(tmp_path) == []
