"""`tinysense train kws --arch embedding`: a small head over Google's pretrained speech embedding.

The frozen mel and embedding models (edge.hearing.embedding, from the openwakeword==0.5.1 wheel)
turn each clip into `FRAMES` 96-d embeddings (one per 80 ms); only the head
(trainer.kws_models.embedding_head) is trained. Clips, splits, cross-validation folds, --words,
--balance and --real-copies are those of `train kws` (trainer.kws_train). Embeddings are cached
per clip set in `<cache>/embedding/` (default ~/.cache/tinysense/embedding), so a
cross-validation run computes them once for all folds.

Augmentation: each clip is embedded in a context `SHIFT` steps longer at both ends, and training
sees all 2 * SHIFT + 1 views (the word up to 160 ms early or late in the window, as a stream sees
it between two steps); validation and held-out clips are scored on the centred view, as
`bench --data` does. `--real-copies N` adds N augmented copies (speed, shift, reverb, generated
noise, gain) of every real clip, of which the training speakers' are used.

`--ensemble N` trains N heads on the same clips, each with its own seed, and ships one model that
averages their posteriors: a single head's accuracy varies by about 1 pp from seed to seed, and the
average of several is both higher and steadier.

`--out-of-fold K` trains K heads too, head k without the speakers of partition k
(`out_of_fold_partition`), and ships their average. As a `--teacher` (trainer.kws_distill), such a
folder scores every clip with the one head that never heard its speaker: out-of-fold posteriors, as
in stacking (Wolpert 1992), which on real training clips say more than their labels, where a head
that heard them only repeats the labels back.

Custom words: `--init-from` a trained embedding head (e.g. one of synthetic voices alone) continues
from its weights, and `--enrol DIR` adds the user's own recordings (trainer/kws_enrol.py): the
fine-tune to one voice, in minutes on a CPU.

The model folder gets the two feature models (`melspectrogram.tflite`, `embedding_model.tflite`)
with their sha256, source package and licence in train_meta.json's `assets`; `tinysense export`
carries them into the bundle.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.core.fileio import atomic_save_npz, sha256_file
from edge.hearing import embedding as emb
from edge.hearing.audio import speech_bounds
from edge.hearing.speech_commands import UNKNOWN

log = logging.getLogger(__name__)

#: Embeddings the head sees: 10 steps = 1.52 s of audio (a 1 s clip with 0.26 s to spare).
FRAMES = 10
#: Extra steps at each end of a training clip's context (views shifted by up to 2 x 80 ms).
SHIFT = 2
#: Streaming detection defaults for the daemon's later cascade step: the head runs every step.
DETECTION = {"inference_stride_ms": 80, "smoothing_window_ms": 240, "threshold": 0.6, "min_count": 2,
             "refractory_ms": 1000}
CACHE_FORMAT = 1


def out_of_fold_partition(speakers: np.ndarray, folds: int) -> np.ndarray:
    """(N,) partition 0..folds-1 of each speaker key, stable across runs and independent of the
    `--cv-folds` split (another salt), so any clip's partition can be found again from its speaker."""
    from edge.hearing.speech_commands import speaker_fold

    return np.array([speaker_fold(f"out-of-fold:{speaker}", folds) for speaker in speakers.tolist()], np.int64)


def without_partition(parts, posteriors: np.ndarray | None, folds: int, partition: int):
    """`parts` with the training clips of speaker `partition` (of `folds`) set aside (role 'unused'),
    and the rows of `posteriors` (one per training clip, stacked part by part) kept in step."""
    kept_parts, keep = [], []
    for corpus, roles in parts:
        training = roles == "train"
        excluded = training & (out_of_fold_partition(corpus.speakers, folds) == partition)
        kept_parts.append((corpus, np.where(excluded, "unused", roles)))
        keep.append(~excluded[training])
    keep = np.concatenate(keep) if keep else np.zeros(0, bool)
    return kept_parts, None if posteriors is None else posteriors[keep]


def embedding_cache_dir(cache: Path | None) -> Path:
    """`<cache>/embedding` for --cache DIR, else ~/.cache/tinysense/embedding ($TINYSENSE_CACHE)."""
    from trainer.kws_corpus import default_cache_dir

    return Path(cache) / "embedding" if cache is not None else default_cache_dir().parent / "embedding"


def feature_models_sha() -> str:
    """One sha256 over the packaged mel and embedding models: part of every embedding cache key."""
    return hashlib.sha256("".join(sha256_file(p) for p in emb.packaged_model_paths().values()).encode()).hexdigest()


def cached_views(clips: np.ndarray, features: emb.SpeechEmbedding, model_sha: str, cache_dir: Path,
                 shift: int = SHIFT) -> np.ndarray:
    """`clips_embeddings(clips, FRAMES, shift)` (N, 2 * shift + 1, FRAMES, 96), from the cache when
    the same clips were embedded before with the same models and settings."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{FRAMES}:{shift}:{model_sha}:{clips.shape}".encode())
    digest.update(np.ascontiguousarray(clips, dtype=np.int16).tobytes())
    path = cache_dir / f"{digest.hexdigest()[:20]}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return data["views"]
        except (OSError, KeyError, ValueError) as exc:
            log.warning("%s: unreadable embedding cache (%s); computing again", path, exc)
    started = time.perf_counter()
    views = embed_clips(clips, features, shift)
    log.info("embedded %d clips in %.0f s -> %s", len(clips), time.perf_counter() - started, path)
    atomic_save_npz(path, views=views)
    return views


#: Clips per job when the embedding is spread over processes.
CHUNK_CLIPS = 100
_worker_features: emb.SpeechEmbedding | None = None


def _embed_chunk(clips: np.ndarray, shift: int = SHIFT) -> np.ndarray:
    """Worker: `clip_embeddings` of a chunk of clips, with the process's own feature models."""
    global _worker_features
    if _worker_features is None:
        _worker_features = emb.SpeechEmbedding.from_package()
    return emb.clips_embeddings(clips, _worker_features, FRAMES, shift)


def embed_clips(clips: np.ndarray, features: emb.SpeechEmbedding, shift: int = SHIFT) -> np.ndarray:
    """(N, 2 * shift + 1, FRAMES, 96) views of every clip; spread over the CPU cores (spawned
    processes, about 1.8x on 2 cores) when there are many, with a progress line on a terminal."""
    import concurrent.futures
    import multiprocessing
    import os

    processes = min(len(os.sched_getaffinity(0)), -(-len(clips) // CHUNK_CLIPS))
    if processes <= 1:
        return emb.clips_embeddings(clips, features, FRAMES, shift)
    chunks = [clips[start:start + CHUNK_CLIPS] for start in range(0, len(clips), CHUNK_CLIPS)]
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        views = []
        for n, chunk_views in enumerate(pool.map(_embed_chunk, chunks, [shift] * len(chunks))):
            views.append(chunk_views)
            if sys.stderr.isatty():
                print(f"\rembedding {min((n + 1) * CHUNK_CLIPS, len(clips))}/{len(clips)} clips", end="",
                      file=sys.stderr, flush=True)
    return np.concatenate(views)


def embedding_by_role(parts, labels: list[str], features, model_sha: str,
                      cache_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{role: (views (N, 2 * SHIFT + 1, FRAMES, 96), label indices)} over all parts, in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    out = {}
    per_part = [(cached_views(corpus.clips, features, model_sha, cache_dir), corpus, roles) for corpus, roles in parts]
    for role in ("train", "validation", "heldout"):
        xs, ys = [], []
        for views, corpus, roles in per_part:
            chosen = roles == role
            if chosen.any():
                xs.append(views[chosen])
                ys.append(np.array([index[label] for label in corpus.labels[chosen].tolist()], dtype=np.int64))
        out[role] = (np.concatenate(xs), np.concatenate(ys)) if xs else \
            (np.zeros((0, 2 * SHIFT + 1, FRAMES, emb.EMBEDDING_DIM), np.float32), np.zeros(0, np.int64))
    return out


#: Speech negatives: each is NEGATIVE_SAMPLES of audio (3 s) made of NEGATIVE_WORDS non-keyword
#: words; its windows at NEGATIVE_SHIFT steps either side cover all of it, and every
#: NEGATIVE_STRIDE-th one is a training view.
NEGATIVE_SAMPLES = 3 * emb.SAMPLE_RATE
NEGATIVE_WORDS = 4
NEGATIVE_SHIFT = 10
NEGATIVE_STRIDE = 5


def negative_sequences(clips: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, NEGATIVE_SAMPLES) int16: runs of NEGATIVE_WORDS random non-keyword clips, each cut
    to its speech and joined by 0-150 ms pauses, over the first clip's own noise floor.

    A head trained on isolated, centred words has never seen a window that starts or ends inside
    speech, or holds the end of one word and the start of the next, which is what continuous
    speech gives it; in streams those windows were most of the false accepts."""
    from edge.hearing.frontend import quietest_window

    rng = np.random.default_rng(seed)
    out = np.zeros((count, NEGATIVE_SAMPLES), np.int16)
    for n in range(count):
        picked = clips[rng.choice(len(clips), NEGATIVE_WORDS)]
        floor = float(np.sqrt(np.mean(quietest_window(picked[0], 1600).astype(np.float64) ** 2)))
        audio = rng.standard_normal(NEGATIVE_SAMPLES) * floor
        position = int(rng.integers(0, emb.SAMPLE_RATE // 4))
        for clip in picked:
            start, end = speech_bounds(clip, margin=800)  # 50 ms either side
            piece = clip[start:end][:NEGATIVE_SAMPLES - position].astype(np.float64)
            audio[position:position + len(piece)] = piece
            position += len(piece) + int(rng.integers(0, emb.SAMPLE_RATE * 15 // 100))
            if position >= NEGATIVE_SAMPLES:
                break
        out[n] = np.clip(np.rint(audio), -32768, 32767).astype(np.int16)
    return out


def speech_negatives(parts, count: int, features, model_sha: str, cache_dir: Path, seed: int) -> np.ndarray:
    """(count, 2 * SHIFT + 1, FRAMES, 96) training views of `negative_sequences` made from the
    training clips labelled `_unknown_` (synthetic and real); all of them are `_unknown_`."""
    pool = [corpus.clips[(roles == "train") & (corpus.labels == UNKNOWN)] for corpus, roles in parts]
    pool = np.concatenate([p for p in pool if len(p)]) if any(len(p) for p in pool) else np.zeros((0, 1), np.int16)
    if not count or not len(pool):
        return np.zeros((0, 2 * SHIFT + 1, FRAMES, emb.EMBEDDING_DIM), np.float32)
    sequences = negative_sequences(pool, count, seed)
    views = cached_views(sequences, features, model_sha, cache_dir, shift=NEGATIVE_SHIFT)
    return views[:, ::NEGATIVE_STRIDE][:, :2 * SHIFT + 1]


def all_views(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, views, FRAMES, 96) -> every view as an example (N * views, FRAMES, 96, 1); `y` (label
    indices (N,) or targets (N, classes)) repeated to match."""
    views = x.shape[1]
    return x.reshape(-1, FRAMES, emb.EMBEDDING_DIM, 1), np.repeat(y, views, axis=0)


def centred(x: np.ndarray) -> np.ndarray:
    """(N, views, FRAMES, 96) -> the centred view (N, FRAMES, 96, 1)."""
    return x[:, SHIFT, ..., np.newaxis]


def copy_feature_models(out_dir: Path) -> dict:
    """Copy the two feature models into the model folder; their `assets` entries for train_meta.json."""
    from edge.core.fileio import atomic_write_bytes

    assets = {}
    for name, source in emb.packaged_model_paths().items():
        target = atomic_write_bytes(Path(out_dir) / source.name, source.read_bytes())
        assets[name] = {"file": target.name, "sha256": sha256_file(target), "size_bytes": target.stat().st_size,
                        "source": f"{emb.SOURCE_PACKAGE}: openwakeword/resources/models/{source.name}",
                        "licence": emb.LICENCE}
    return assets


def real_copies_part(args, words: tuple[str, ...], cv) -> list:
    """--real-copies N for the embedding head: N augmented copies of EVERY real clip (not only
    this fold's training clips), with the real clips' roles, so their embeddings are cached once
    for all folds; only the 'train' role is used."""
    from trainer.kws_corpus import speech_commands_corpus
    from trainer.kws_train import augmented_copies, real_roles

    corpus = speech_commands_corpus(args.data, words, seed=args.seed)
    roles = real_roles(corpus, *(cv or (None, 0)), args.validation_split)
    copied, _ = augmented_copies(corpus, args.real_copies, args.seed)
    return [(copied, np.tile(np.where(roles == "train", "train", "unused"), args.real_copies))]


def teacher_copies(args, words: tuple[str, ...], cv, teacher, seed: int):
    """--real-copies N augmented copies of the real clips drawn with `seed` (`real_copies_part`; [] without
    the option) and, with a teacher, its posteriors on their training clips (else None). Heads that
    share a seed share these, so they are built once for all of them."""
    import argparse

    if not args.real_copies:
        return [], None
    copies = real_copies_part(argparse.Namespace(**{**vars(args), "seed": seed}), words, cv)
    return copies, None if teacher is None else teacher.posteriors(copies, "train", args.cache)


def head_examples(args, labels: list[str], parts, copies, features, model_sha: str,
                  base_posteriors: np.ndarray | None, weight: float, seed: int, held_out_partition: int | None = None):
    """One head's examples: (views (N, FRAMES, 96, 1), targets), validation and held-out (centred
    view, label indices), calibration (centred views of the training clips, label indices) and the
    number of speech negatives. `copies` is `teacher_copies`' pair (augmented real copies, the
    teacher's posteriors on them); `seed` draws the speech negatives (the copies come from the same
    seed), so each head of an --ensemble learns from other copies and negatives; validation and
    held-out clips are the same for every seed. `held_out_partition` k (with `--out-of-fold K`) leaves
    out the training clips of speaker partition k, copies and speech negatives included. The
    teacher's posteriors, if any (`base_posteriors`: those of `parts`' training clips, computed once
    for all heads), are mixed in at `weight`; the speech negatives keep their `_unknown_` label."""
    from trainer.kws_distill import soft_targets
    from trainer.kws_train import split_roles

    copies, copy_posteriors = copies
    posteriors = base_posteriors
    if copy_posteriors is not None:  # the training role stacks part by part, the copies last
        posteriors = np.concatenate([base_posteriors, copy_posteriors])
    parts = parts + copies
    if held_out_partition is not None:
        parts, posteriors = without_partition(parts, posteriors, args.out_of_fold, held_out_partition)
    roles = embedding_by_role(parts, labels, features, model_sha, embedding_cache_dir(args.cache))
    (x_train, y_train), (x_val, y_val), (x_held, y_held), posteriors = split_roles(roles, args, len(labels), posteriors)
    negatives = speech_negatives(parts, args.speech_negatives, features, model_sha, embedding_cache_dir(args.cache),
                                 seed)
    x_train = np.concatenate([x_train, negatives])
    y_train = np.concatenate([y_train, np.full(len(negatives), labels.index(UNKNOWN))])
    targets = y_train
    if posteriors is not None:
        unknown = np.eye(len(labels), dtype=np.float32)[np.full(len(negatives), labels.index(UNKNOWN))]
        targets = soft_targets(y_train, np.concatenate([posteriors, unknown]), weight)
    return all_views(x_train, targets), (centred(x_val), y_val), (centred(x_held), y_held), \
        (centred(x_train), y_train), len(negatives)


def train(args, words: tuple[str, ...], labels: list[str], cv, started: float, teacher=None, weight: float = 0.0) -> int:
    """The embedding-head branch of `train kws` (after its argument checks): `args.ensemble` heads,
    head i with seed `args.seed + i` (`head_examples`), or `args.out_of_fold` heads, head k without
    speaker partition k, trained into `heads/<i>/` and averaged
    (trainer.kws_models.average_posteriors) when there is more than one. On the dev set's 5-fold CV
    one head scored 93.9-94.9 % over five seeds (mean 94.4 %), three 95.0 %, five 95.3 % (README)."""
    import argparse
    from dataclasses import asdict

    from trainer.fit import FitConfig, fit, save_keras_atomic
    from trainer.kws_models import ARCHITECTURES, DEFAULT_EPOCHS, average_posteriors, count_macs
    from trainer.kws_train import check_init_from, load_data
    from trainer.outputs import clear_previous_run, save_training_outputs

    if args.warm_frontend:
        raise InputError("--warm-frontend is for the microfrontend models, not --arch embedding")
    if args.ensemble > 1 and args.init_from is not None:
        raise InputError("--ensemble N trains new heads; --init-from fine-tunes one model (drop one of them)")
    if args.out_of_fold is not None and (args.ensemble > 1 or args.init_from is not None):
        raise InputError("--out-of-fold K trains K new heads; drop --ensemble and --init-from")
    count = args.out_of_fold or args.ensemble
    heads_trained = count
    if args.init_from is not None:
        init = check_init_from(args.init_from, labels, False)["training"]
        arch, heads_trained = init["arch"], init.get("ensemble", 1)  # a fine-tuned ensemble stays one
        if arch != "embedding":
            raise InputError(f"{args.init_from}: a {arch} model; --arch embedding fine-tunes only an embedding head")
    features = emb.SpeechEmbedding.from_package()
    model_sha = feature_models_sha()
    parts, data = load_data(argparse.Namespace(**{**vars(args), "real_copies": 0}), words, cv)
    if args.real_copies:
        if not any((roles == "train").any() for _, roles in parts[-1:]):
            raise InputError(f"{args.data}: no training clips to copy; add --cv-folds K to train on some of them")
        data["real"]["augmented_copies"] = args.real_copies
    shape = (FRAMES, emb.EMBEDDING_DIM, 1)

    def build():
        import keras

        return keras.saving.load_model(args.init_from / "keras" / "model.keras") if args.init_from else \
            ARCHITECTURES["embedding"](shape, len(labels))

    clear_previous_run(args.out)
    shutil.rmtree(args.out / "heads", ignore_errors=True)  # an earlier run's heads are not this one's
    base_posteriors = None if teacher is None else teacher.posteriors(parts, "train", args.cache)
    heads, histories, copies = [], [], None
    for head in range(count):
        # out-of-fold heads share the seed, and so the copies: they differ by whom they hear
        seed = args.seed + (0 if args.out_of_fold else head)
        if copies is None or not args.out_of_fold:
            copies = teacher_copies(args, words, cv, teacher, seed)
        if args.out_of_fold:
            log.info("kws embedding: head %d of %d, without speaker partition %d", head + 1, count, head)
        elif count > 1:
            log.info("kws embedding: head %d of %d (seed %d)", head + 1, count, seed)
        train_part, validation, heldout, calibration, negatives = head_examples(
            args, labels, parts, copies, features, model_sha, base_posteriors, weight, seed,
            head if args.out_of_fold else None)
        if head == 0:
            log.info("kws embedding: %d train examples (%d views), %d validation, %d held-out clips; features %.0f s",
                     len(train_part[1]), 2 * SHIFT + 1, len(validation[1]), len(heldout[1]),
                     time.perf_counter() - started)
        config = FitConfig(epochs=args.epochs or DEFAULT_EPOCHS["embedding"], batch_size=args.batch_size,
                           optimizer="adam", learning_rate=args.learning_rate, seed=seed, schedule=args.schedule)
        head_dir = args.out if count == 1 else args.out / "heads" / str(head)
        model, history = fit(build, train_part, validation, len(labels), head_dir, config)
        heads.append(model)
        histories.append(history)
    data["speech_negatives"] = {"sequences": negatives, "seconds_each": NEGATIVE_SAMPLES / emb.SAMPLE_RATE,
                                "words_each": NEGATIVE_WORDS}
    x_held, y_held = heldout
    if count > 1:
        model = average_posteriors(heads, shape)
        save_keras_atomic(model, args.out / "keras" / "model.keras")
    source = "real speech held-out speakers" if args.data is not None else "synthetic speech, validation speakers"
    assets = copy_feature_models(args.out)
    meta = {
        "name": args.out.name,
        "task": "kws-embedding",
        "labels": labels,
        "input": {"shape": list(shape), "dtype": "float32",
                  "layout": f"{FRAMES} speech embeddings (one per 80 ms) x 96 x 1 (edge.hearing.embedding)"},
        "embedding": {"frames": FRAMES, "shift": SHIFT, "sample_rate": emb.SAMPLE_RATE,
                      "step_samples": emb.STEP_SAMPLES, "window_frames": emb.WINDOW_FRAMES,
                      "mel_transform": "x / 10 + 2", "context_samples": emb.context_samples(FRAMES),
                      "source_package": emb.SOURCE_PACKAGE},
        "assets": assets,
        "detection": DETECTION,
        "training": {"arch": "embedding", "init_from": str(args.init_from) if args.init_from else None,
                     "words": list(words), "balance": args.balance, **asdict(config),
                     "seed": args.seed, "teacher": teacher.record(weight) if teacher else None,
                     "views": 2 * SHIFT + 1, "ensemble": heads_trained, "out_of_fold": args.out_of_fold,
                     "params": int(model.count_params()), "macs": count_macs(model),
                     "history": histories[0] if count == 1 else histories,
                     "seconds": round(time.perf_counter() - started, 1)},
        "data": {"source": source, "train": int(len(train_part[1])), "validation": int(len(validation[1])),
                 "heldout": int(len(y_held)), **data},
    }
    # The calibration pool draws from the centred views, the inputs a scored clip gives; an out-of-fold
    # model's from its last head's training clips (all speaker partitions but one: every class is there).
    metrics = save_training_outputs(args.out, model, meta, *calibration, x_held, y_held,
                                    calibration_per_class=50, seed=args.seed)
    log.info("kws embedding: held-out accuracy %.4f (%d clips) in %.0f s", metrics["heldout_accuracy"],
             metrics["heldout_count"], time.perf_counter() - started)
    print(f"trained {args.out}: held-out accuracy {metrics['heldout_accuracy']:.4f} on {metrics['heldout_count']} clips ({source})")
    return 0

