"""Keyword-spotting convnets on microfrontend features (frames x channels x 1), by name.

Inputs are the float features of `edge.hearing.frontend` (98 x 40, values 0 to ~26) as they are; the
exported models take exactly what the runtime's front-end produces. Every layer converts to
TFLite builtins that TFLite Micro and the Edge TPU run (CONV_2D, DEPTHWISE_CONV_2D,
MAX/AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX; batch norm folds into convolutions,
dropout disappears).
"""
from __future__ import annotations

from collections.abc import Callable


def book(input_shape: tuple[int, int, int], num_classes: int):
    """The book's spectrogram convnet, adapted to 98 x 40: the float reference (~0.8 M parameters).

    conv 8@[2,8] -> pool -> 3 x (conv 32@[2,4] -> pool) -> flatten -> dropout .25 -> dense 2000
    -> dropout .5 -> softmax.
    """
    import keras
    from keras import layers

    stack = [keras.Input(input_shape), layers.Conv2D(8, (2, 8), padding="same", activation="relu"),
             layers.MaxPooling2D(2)]
    for _ in range(3):
        stack += [layers.Conv2D(32, (2, 4), padding="same", activation="relu"), layers.MaxPooling2D(2)]
    stack += [layers.Flatten(), layers.Dropout(0.25), layers.Dense(2000, activation="relu"), layers.Dropout(0.5),
              layers.Dense(num_classes, activation="softmax")]
    return keras.Sequential(stack, name="kws_book")


def _ds_cnn(input_shape: tuple[int, int, int], num_classes: int, *, filters: int,
            blocks: tuple[tuple[int, int], ...], name: str):
    """Depthwise-separable CNN (Zhang et al. 2017; the MLPerf Tiny KWS reference).

    A (10, 4) conv with stride 4 brings 98 x 40 down to 25 x 10 (40 ms x 4 mel bands per cell),
    then per (filters, stride) in `blocks` a depthwise 3x3 + pointwise 1x1 (each with batch norm
    and ReLU), average pool over the whole map, dense softmax. The stride keeps every activation
    small enough for a 32 KB arena; a block with stride 2 quarters the map, so the blocks after
    it can be wider at the same arena.
    """
    import keras
    from keras import layers

    def bn_relu(x):
        return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))  # settles in few steps (small corpora)

    inputs = keras.Input(input_shape)
    x = bn_relu(layers.Conv2D(filters, (10, 4), strides=(4, 4), padding="same", use_bias=False)(inputs))
    x = layers.Dropout(0.2)(x)
    for block_filters, stride in blocks:
        x = bn_relu(layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x))
        x = bn_relu(layers.Conv2D(block_filters, 1, use_bias=False)(x))
    x = layers.Dropout(0.4)(x)
    x = layers.GlobalAveragePooling2D()(x)  # MEAN: no dynamic-batch RESHAPE for the Edge TPU compiler
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def ds_cnn(input_shape: tuple[int, int, int], num_classes: int):
    """The edge model: DS-CNN, 48 filters, 4 blocks (~15 k parameters, ~37 KB int8, ~31 KB TFLM arena)."""
    return _ds_cnn(input_shape, num_classes, filters=48, blocks=((48, 1),) * 4, name="kws_ds_cnn")


def ds_cnn_l(input_shape: tuple[int, int, int], num_classes: int):
    """DS-CNN with more capacity at fewer MACs and a smaller arena: 40 filters on 25 x 10 for two
    blocks, then a strided block to 13 x 5 and two more, 80 wide (~27 k parameters, 2.5 M MACs,
    ~56 KB int8, ~29 KB TFLM arena)."""
    return _ds_cnn(input_shape, num_classes, filters=40, blocks=((40, 1), (40, 1), (80, 2), (80, 1), (80, 1)),
                   name="kws_ds_cnn_l")


def tiny(input_shape: tuple[int, int, int], num_classes: int):
    """A DS-CNN with 16 filters and one block: trains in seconds on a CPU, for tests."""
    return _ds_cnn(input_shape, num_classes, filters=16, blocks=((16, 1),), name="kws_tiny")


def embedding_head(input_shape: tuple[int, int, int], num_classes: int):
    """A head over a sequence of speech embeddings (frames x 96 x 1, edge.hearing.embedding).

    dropout .2 -> conv 32@[3 x 96] (each output sees 3 consecutive embeddings whole) -> batch
    norm, ReLU -> conv 32@[3 x 1] -> batch norm, ReLU -> flatten (keeps where in the context the
    word is) -> dropout .5 -> dense softmax. CONV_2D, RESHAPE, FULLY_CONNECTED and SOFTMAX only,
    so TFLite Micro and the Edge TPU run it (~15 k parameters for 10 frames; 64 filters gave the
    same dev-set accuracy on two folds).
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    x = layers.Dropout(0.2)(inputs)
    x = layers.Conv2D(32, (3, input_shape[1]), use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Conv2D(32, (3, 1), use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Dropout(0.5)(layers.Flatten()(x))
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="kws_embedding_head")


def average_posteriors(heads: list, input_shape: tuple[int, ...]):
    """One model whose output (N, classes) is the mean of the heads' softmax outputs: a deep
    ensemble (Lakshminarayanan et al. 2017, "Simple and Scalable Predictive Uncertainty Estimation
    using Deep Ensembles"). Each head stays a sub-model (head_0, head_1, ...); the mean becomes ADD
    and MUL, which TFLite Micro and the Edge TPU run."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    for index, head in enumerate(heads):
        head.name = f"head_{index}"
    outputs = layers.Average(name="average_posteriors")([head(inputs) for head in heads])
    return keras.Model(inputs, outputs, name="kws_embedding_ensemble")


ARCHITECTURES: dict[str, Callable] = {"book": book, "ds-cnn": ds_cnn, "ds-cnn-l": ds_cnn_l, "tiny": tiny,
                                      "embedding": embedding_head}
#: Epochs for the default synthetic corpus (Adam 0.003, batch 128; ds-cnn's validation accuracy
#: levels off after about 15).
DEFAULT_EPOCHS = {"book": 20, "ds-cnn": 20, "ds-cnn-l": 20, "tiny": 15, "embedding": 20}


def spec_augment(time_masks: int = 2, time_width: int = 10, freq_masks: int = 2, freq_width: int = 5):
    """SpecAugment-style masking of training batches (Park et al. 2019): random bands of frames
    and of channels are set to zero, so the model cannot lean on one cue of a synthetic voice.
    Its randomness follows the seed `trainer.fit.fit` sets before training."""
    import tensorflow as tf

    def masks(length: int, count: int, width: int, batch: tf.Tensor) -> tf.Tensor:
        keep = tf.ones((batch, length), tf.float32)
        positions = tf.range(length)[tf.newaxis, :]
        for _ in range(count):
            size = tf.random.uniform((batch, 1), 0, width + 1, dtype=tf.int32)
            start = tf.random.uniform((batch, 1), 0, length, dtype=tf.int32)
            keep *= 1.0 - tf.cast((positions >= start) & (positions < start + size), tf.float32)
        return keep

    def augment(batch: tf.Tensor, training: bool = True) -> tf.Tensor:
        if not training:
            return batch
        n = tf.shape(batch)[0]
        frames, channels = batch.shape[1], batch.shape[2]
        keep_time = masks(frames, time_masks, time_width, n)[:, :, tf.newaxis, tf.newaxis]
        keep_freq = masks(channels, freq_masks, freq_width, n)[:, tf.newaxis, :, tf.newaxis]
        return batch * keep_time * keep_freq

    return augment


def count_macs(model) -> int:
    """Multiply-accumulates of one inference, counted over Conv2D, DepthwiseConv2D and Dense layers
    (pooling, batch norm and activations are left out: they fold away or are comparatively free)."""
    import keras
    from keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a head of an ensemble (average_posteriors)
            macs += count_macs(layer)
        elif isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            macs += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            macs += h * w * c * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return int(macs)
