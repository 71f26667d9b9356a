"""The digit architectures (`large-bn` is `large` with batch normalisation) and the `--schedule` option."""
from __future__ import annotations

import argparse

import numpy as np

from trainer import digits_train
from trainer.digits_models import ARCHITECTURES, DEFAULT_EPOCHS


def test_large_bn_normalises_every_conv_and_the_hidden_dense():
    from keras import layers

    plain, normalised = ARCHITECTURES["large"](), ARCHITECTURES["large-bn"]()
    kinds = [type(layer).__name__ for layer in normalised.layers]
    weighted = [layer for layer in normalised.layers if isinstance(layer, (layers.Conv2D, layers.Dense))]
    # 4 convs and dense 512, each followed by batch norm then ReLU; the softmax layer is not normalised
    for layer in weighted[:-1]:
        at = normalised.layers.index(layer)
        assert not layer.use_bias and kinds[at + 1 : at + 3] == ["BatchNormalization", "ReLU"], layer.name
    assert kinds.count("BatchNormalization") == 5 and weighted[-1].use_bias
    assert all(layer.use_bias for layer in plain.layers if isinstance(layer, (layers.Conv2D, layers.Dense)))
    assert "BatchNormalization" not in [type(layer).__name__ for layer in plain.layers]
    x = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1)).astype("float32")
    assert normalised(x).shape == plain(x).shape == (2, 10)
    assert DEFAULT_EPOCHS.keys() == ARCHITECTURES.keys()


def test_schedule_option():
    parser = argparse.ArgumentParser()
    digits_train.add_arguments(parser)
    assert parser.parse_args([]).schedule == "constant"
    assert parser.parse_args(["--arch", "large-bn", "--schedule", "cosine"]).schedule == "cosine"
