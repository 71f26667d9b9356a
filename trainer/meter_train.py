"""`tinysense train meter`: a meter-digit model (one class per tenth) from photos or rendered crops.

Without `--data` it trains on rendered wheels and LCD digits only (offline, about 4 minutes on
2 cores). With `--data DIR` it trains on the value-prefixed crops under DIR and, unless
`--renders 0`, on `DEFAULT_RENDERS` rendered crops besides; a DIR holding
`train/` and `dev/` is trained on train/ and scored on dev/ (never trained on).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from edge.core.argtypes import fraction_or_zero, non_negative_int, positive_float, positive_int, share
from edge.seeing import meter
from trainer.meter_models import ARCHITECTURES

log = logging.getLogger(__name__)
#: Epochs (rendered default, real photos): measured on 2 cores to fit the time budget of `make demo`.
DEFAULT_EPOCHS = {"rendered": 8, "photos": 30}
#: Rendered crops without --data. On the meter_digits dev split (int8, seeds 0 / 1), 8000 read
#: 88.4 / 88.0 % of clean digits and 82.3 / 84.8 % of wheels between two digits; 16000 read
#: 91.5 / 92.5 % and 87.7 / 89.9 % (both with three OCR-B faces since left out; without them 16000
#: read 93.7 / 89.0 % and 89.9 / 90.3 %, and with `meter_models.ZOOM_WIDTH` too 91.6 / 93.8 % and
#: 89.4 / 86.4 %), for about 4 minutes of training instead of 2.5 on 2 cores.
DEFAULT_COUNT = 16000
#: Rendered crops mixed into photo training (--data). On the meter_digits dev split (30 epochs, int8,
#: clean / between two digits / lcd2): 4000 read 98.2 / 97.3 / 97.1 %, 8000 98.6 / 98.3 / 100 %,
#: 16000 98.9 / 97.6 / 100 % (one seed each).
DEFAULT_RENDERS = 8000
#: Validation photos are whole meters: the default tenth of the crops holds 4 to 12 of the 28
#: meter_digits training meters out. Training on all of them (`--validation-split 0`, the last
#: epoch's weights) read, over seeds 0 / 1 / 2 on the dev split (int8), 98.7 / 98.9 / 98.6 % of clean
#: digits and 98.4 / 97.7 / 97.8 % between two digits, against 98.3 / 98.7 / 98.6 % and
#: 97.5 / 98.2 / 98.0 % with validation: no gain beyond seed-to-seed spread, so validation stays.
VALIDATION_SPLIT = 0.1


def add_arguments(parser) -> None:
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="folder of crops named like 4.9_anything.jpg, searched recursively; with train/ and dev/ "
                             "sub-folders, trains on train/ and reports on dev/ (default: rendered crops only)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out training crops whose path (relative to the training folder) matches, "
                             "e.g. 'lcd7seg/*_kz0003*' (repeatable)")
    parser.add_argument("--count", type=positive_int, default=DEFAULT_COUNT,
                        help=f"rendered crops without --data (default {DEFAULT_COUNT})")
    parser.add_argument("--renders", type=non_negative_int, default=DEFAULT_RENDERS, metavar="N",
                        help="with --data: also train on N rendered crops (other drums, colours and fonts than the "
                             f"photos'; default {DEFAULT_RENDERS}, 0 for photos only)")
    parser.add_argument("--lcd-share", type=share, default=None, metavar="F",
                        help="share of rendered crops that are LCD digits (default: trainer.meter_data.LCD_SHARE); "
                             "for meters with number wheels only, 0 with --exclude 'lcd*/*' keeps a wheel's "
                             "level-flagged 1 from reading as an LCD 7")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="small")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"epochs (default: {DEFAULT_EPOCHS['rendered']} rendered, {DEFAULT_EPOCHS['photos']} photos)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", choices=["rmsprop", "adam", "sgd"], default="adam")
    parser.add_argument("--learning-rate", type=positive_float, default=2e-3)
    parser.add_argument("--validation-split", type=fraction_or_zero, default=VALIDATION_SPLIT,
                        help="share of training crops (whole sub-folders when there are several) held for validation; "
                             "0 trains on every meter and keeps the last epoch's weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("models/meter"), help="model folder (default: models/meter)")


def run(args) -> int:
    from trainer.fit import FitConfig, fit
    from trainer.meter_data import LCD_SHARE, add_renders, load_photos, load_rendered
    from trainer.meter_models import augmenter
    from trainer.outputs import check_out_dir, save_training_outputs

    started = time.perf_counter()
    check_out_dir(args.out)
    lcd_share = LCD_SHARE if args.lcd_share is None else args.lcd_share
    if args.data is None:
        data = load_rendered(args.count, args.validation_split, args.seed, lcd_share)
    else:
        data = load_photos(args.data, args.exclude, args.validation_split, args.seed)
        if args.renders > 0:
            data = add_renders(data, args.renders, args.seed, lcd_share)
    epochs = args.epochs or DEFAULT_EPOCHS["rendered" if args.data is None else "photos"]
    config = FitConfig(epochs=epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                       learning_rate=args.learning_rate, seed=args.seed, schedule="cosine")
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
        "training": {"arch": args.arch, "count": args.count if args.data is None else None,
                     "renders": None if args.data is None else args.renders, "lcd_share": lcd_share,
                     "exclude": args.exclude,
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
