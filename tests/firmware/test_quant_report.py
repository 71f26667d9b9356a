"""Per-layer int8 quantization error (TensorFlow's QuantizationDebugger) as CSV and PNG."""
from __future__ import annotations

import csv

from edge.cli import main


def test_report_lists_every_quantized_layer_and_flags_by_threshold(digits_bundle, tmp_path, capsys):
    assert main(["-q", "quant-report", str(digits_bundle), "--samples", "20", "--threshold", "0.0", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "quant_report.csv").open()))
    ops = [row["op_name"] for row in rows]
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops
    errors = [float(row["rmse/scale"]) for row in rows if row["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert all(0.1 < error < 2.0 for error in errors), errors  # around rounding noise, 1/sqrt(12) = 0.29 LSB
    assert all(row["flagged"] == "True" for row in rows if float(row["rmse/scale"]) > 0)
    assert (tmp_path / "quant_report.png").read_bytes()[:4] == b"\x89PNG"
    assert "layers above 0.0 LSB" in capsys.readouterr().out


def test_missing_training_output_is_one_clear_error(tmp_path, capsys):
    assert main(["quant-report", str(tmp_path)]) == 2
    assert "keras/model.keras: missing" in capsys.readouterr().err
