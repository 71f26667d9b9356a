"""Session fixtures: small real bundles trained and exported once per test run (no downloads)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest


@pytest.fixture(scope="session")
def digits_bundle(tmp_path_factory):
    """A small digits convnet trained on the embedded 5000 MNIST digits, exported to all variants."""
    from tests.builders import build_digits_bundle

    return build_digits_bundle(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def kws_bundle(tmp_path_factory):
    """A small keyword spotter trained on synthetic speech, exported to all variants."""
    from tests.builders_kws import build_kws_bundle

    return build_kws_bundle(tmp_path_factory.mktemp("kws"))
