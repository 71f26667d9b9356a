"""`tinysense train meter`: a meter-digit model (one class per tenth) from photos or rendered crops.

One model per kind of display (`--display`): number wheels (`models/meter`) or seven-segment LCD
digits (`models/meter-lcd`). Without `--data` it trains on rendered crops of that kind only
(offline, about 4 minutes on 2 cores for wheels). With `--data DIR` it trains on the value-prefixed
crops under DIR (`--include` / `--exclude` pick the meters of that kind) and, unless `--renders 0`,
on `DEFAULT_RENDERS` rendered crops besides; a DIR holding `train/` and `dev/` is trained on
train/ and scored on dev/ (never trained on).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from edge.core.argtypes import fraction_or_zero, non_negative_int, positive_float, positive_int
from edge.seeing import meter
from edge.seeing.meter import DISPLAYS
from trainer.meter_models import ARCHITECTURES

log = logging.getLogger(__name__)
#: Epochs (rendered default, real photos): measured on 2 cores to fit the time budget of `make demo`.
DEFAULT_EPOCHS = {"rendered": 8, "photos": 30}
#: Rendered crops without --data. On the meter_digits dev split (int8, seeds 0 / 1), 8000 read
#: 88.4 / 88.0 % of clean digits and 82.3 / 84.8 % of wheels between two digits; 16000 read
#: 91.5 / 92.5 % and 87.7 / 89.9 % (both with three OCR-B faces since left out; without them 16000
#: read 93.7 / 89.0 % and 89.9 / 90.3 %, and with `meter_models.ZOOM_WIDTH` too 91.6 / 93.8 % and
#: 89.4 / 86.4 %), for about 4 minutes of training instead of 2.5 on 2 cores. (Those models read both
#: kinds of display, 20 % of their renders LCD digits.)
DEFAULT_COUNT = {"wheels": 16000, "lcd": 4000}
#: Rendered crops mixed into photo training (--data). On the meter_digits dev split (30 epochs, int8,
#: clean / between two digits / lcd2): 4000 read 98.2 / 97.3 / 97.1 %, 8000 98.6 / 98.3 / 100 %,
#: 16000 98.9 / 97.6 / 100 % (one seed each).
DEFAULT_RENDERS = 8000
#: Validation share (rendered crops, photos) and momentum of the weights' moving average
#: (trainer.fit.FitConfig.ema_momentum; 0.999 is about the last 1000 steps, 3 of 30 epochs). Photo
#: validation is whole meters, 3 to 12 of meter_digits' 28 training meters, which costs training
#: variety; without validation the moving average gives a model that does not hang on the last
#: epoch's noise. Wheels (`--exclude 'lcd*'`) on the dev split, int8, seeds 0 / 1 / 2: clean digits
#: 99.20 / 98.75 % and between two digits 97.86 / 98.02 % with validation (seeds 0 / 1); 98.92 /
#: 99.49 / 99.32 % and 97.70 / 98.57 / 98.18 % with none; 99.60 / 99.66 / 99.77 % and 98.81 / 98.73 / 99.37 %
#: with none and the moving average; 99.09 / 97.94 % with both (seed 0).
DEFAULT_VALIDATION = {"rendered": 0.1, "photos": 0.0}
DEFAULT_EMA = {"rendered": None, "photos": 0.999}


def add_arguments(parser) -> None:
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="folder of crops named like 4.9_anything.jpg, searched recursively; with train/ and dev/ "
                             "sub-folders, trains on train/ and reports on dev/ (default: rendered crops only)")
    parser.add_argument("--display", choices=DISPLAYS, default="wheels",
                        help="the kind of display the model reads, and the crops rendered for it: number wheels "
                             "(tenths) or seven-segment LCD digits (default: wheels)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="keep only crops whose path (relative to the data folder, or to its train/ and dev/) "
                             "matches, e.g. 'lcd*/*' (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out crops whose path (relative to the data folder, or to its train/ and dev/) "
                             "matches, e.g. 'lcd*/*' (repeatable)")
    parser.add_argument("--count", type=positive_int, default=None,
                        help="rendered crops without --data (default: " +
                             ", ".join(f"{n} {kind}" for kind, n in DEFAULT_COUNT.items()) + ")")
    parser.add_argument("--renders", type=non_negative_int, default=DEFAULT_RENDERS, metavar="N",
                        help="with --data: also train on N rendered crops (other drums, colours and fonts than the "
                             f"photos'; default {DEFAULT_RENDERS}, 0 for photos only)")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="small")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"epochs (default: {DEFAULT_EPOCHS['rendered']} rendered, {DEFAULT_EPOCHS['photos']} photos)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", choices=["rmsprop", "adam", "sgd"], default="adam")
    parser.add_argument("--learning-rate", type=positive_float, default=2e-3)
    parser.add_argument("--validation-split", type=fraction_or_zero, default=None,
                        help="share of training crops (whole sub-folders when there are several) held for validation "
                             f"(default: {DEFAULT_VALIDATION['rendered']} rendered, {DEFAULT_VALIDATION['photos']:g} photos); "
                             "0 trains on every crop and keeps the last epoch's weights (their moving average)")
    parser.add_argument("--ema-momentum", type=fraction_or_zero, default=None, metavar="M",
                        help="keep an exponential moving average of the weights with this momentum as the model "
                             f"(default: {DEFAULT_EMA['photos']} with --data, none for rendered crops; 0 for none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="model folder (default: models/meter for wheels, models/meter-lcd for LCD digits)")


def run(args) -> int:
    from trainer.fit import FitConfig, fit
    from trainer.meter_data import add_renders, load_photos, load_rendered
    from trainer.meter_models import augmenter
    from trainer.outputs import check_out_dir, save_training_outputs

    started = time.perf_counter()
    args.out = args.out or Path("models/meter" if args.display == "wheels" else "models/meter-lcd")
    check_out_dir(args.out)
    count = args.count or DEFAULT_COUNT[args.display]
    source = "rendered" if args.data is None else "photos"
    validation_split = DEFAULT_VALIDATION[source] if args.validation_split is None else args.validation_split
    if args.data is None:
        data = load_rendered(count, validation_split, args.seed, args.display)
    else:
        data = load_photos(args.data, args.include, args.exclude, validation_split, args.seed)
        if args.renders > 0:
            data = add_renders(data, args.renders, args.seed, args.display)
    ema_momentum = DEFAULT_EMA[source] if args.ema_momentum is None else (args.ema_momentum or None)
    config = FitConfig(epochs=args.epochs or DEFAULT_EPOCHS[source], batch_size=args.batch_size,
                       optimizer=args.optimizer, learning_rate=args.learning_rate, seed=args.seed, schedule="cosine",
                       ema_momentum=ema_momentum)
    y_train, y_val, y_test = (meter.value_to_class(v) for v in (data.v_train, data.v_val, data.v_test))
    model, history = fit(ARCHITECTURES[args.arch], (data.x_train, y_train), (data.x_val, y_val), meter.TENTHS,
                         args.out, config, augment=augmenter(args.seed))
    scores = meter.score(data.v_test, meter.class_to_value(
        model.predict(data.x_test.astype("float32"), batch_size=256, verbose=0).argmax(axis=1)))
    meta = {
        "name": args.out.name,
        "task": "meter",
        "labels": meter.LABELS,
        "input": {"shape": [meter.HEIGHT, meter.WIDTH, 1], "dtype": "float32", "range": [0, 255],
                  "layout": "HWC grayscale pixels"},
        "preprocessing": meter.PREPROCESSING,
        "training": {"arch": args.arch, "display": args.display, "count": count if args.data is None else None,
                     "renders": None if args.data is None else args.renders,
                     "include": args.include, "exclude": args.exclude,
                     **asdict(config), "params": int(model.count_params()),
                     "history": history, "seconds": round(time.perf_counter() - started, 1)},
        "data": {"source": data.source, "train": int(len(y_train)), "validation": int(len(y_val)),
                 "heldout": int(len(y_test)), "groups": data.groups},
        "metrics": {"heldout_meter": scores.as_dict()},
    }
    metrics = save_training_outputs(args.out, model, meta, data.x_train, y_train, data.x_test, y_test,
                                    calibration_per_class=5, seed=args.seed)
    log.info("meter: held-out exact tenth %.4f in %.0f s; model in %s", metrics["heldout_accuracy"],
             time.perf_counter() - started, args.out)
    print(f"trained {args.out}: held-out ({len(y_test)} crops) clean digits {scores.clean:.4f} "
          f"({scores.clean_count}), between two digits read as one of them {scores.between:.4f} "
          f"({scores.between_count}), exact tenth {scores.exact:.4f}, within one tenth {scores.within_one:.4f}")
    return 0
