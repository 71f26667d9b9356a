"""A command whose optional extra is not installed says so in one line, before any work starts."""
import importlib.util

import pytest

from edge import cli


@pytest.mark.parametrize("argv,package,extra", [
    (["train", "kws", "--out", "x"], "tensorflow", "train"),
    (["export", "models/x"], "tensorflow", "train"),
    (["quant-report", "models/x"], "tensorflow", "train"),
    (["verify", "models/x"], "tflite_micro", "dev"),
    (["firmware", "models/x"], "tflite_micro", "dev"),
])
def test_missing_extra_is_one_line_up_front(monkeypatch, capsys, argv, package, extra):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinysense {argv[0]}: error: 'tinysense {argv[0]}' needs the Python package {package}: pip install 'tinysense[{extra}]'"


def test_missing_package_imported_late_is_one_line(monkeypatch, capsys):
    """A package imported inside the command's run (after the up-front check) gives the same one line."""
    def run(args):
        raise ModuleNotFoundError("No module named 'keras'", name="keras")

    import edge.bench.model_bench as model_bench
    monkeypatch.setattr(model_bench, "run", run)
    assert cli.main(["bench", "models/x"]) == 2
    assert capsys.readouterr().err.strip() == "tinysense bench: error: 'tinysense bench' needs the Python package keras: pip install 'tinysense[edge]'"


def test_a_missing_module_of_the_project_itself_is_a_bug_not_an_extra(monkeypatch):
    def run(args):
        raise ModuleNotFoundError("No module named 'edge.nothing'", name="edge.nothing")

    import edge.bench.model_bench as model_bench
    monkeypatch.setattr(model_bench, "run", run)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["bench", "models/x"])
