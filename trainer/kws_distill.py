"""`train kws --teacher DIR`: knowledge distillation from a speech-embedding head into a small model.

The teacher is a trained `--arch embedding` folder: its head sits on Google's speech embedding,
which learned from a great deal of real speech, so its posteriors on a synthetic clip say which
real words the clip sounds like. The student (ds-cnn family, microfrontend features) trains on
`(1 - weight) * one-hot label + weight * teacher posteriors` for every training clip (synthetic,
real, augmented copies, enrolled), the soft-target loss of Hinton, Vinyals and Dean (2015,
"Distilling the Knowledge in a Neural Network") at temperature 1, where cross-entropy against the
mixed targets equals the weighted sum of the hard and soft losses. The teacher runs in training
only: nothing of it goes into the student's bundle.

The teacher's embeddings come from the same per-clip-set cache as `--arch embedding` training
(trainer.kws_embedding), so a corpus the teacher was trained on is not embedded again.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.core.fileio import read_json, sha256_file

log = logging.getLogger(__name__)


def check_teacher(teacher_dir: Path, labels: list[str]) -> dict:
    """The teacher's train_meta.json; InputError unless it is an embedding head with these labels."""
    meta_path, keras_path = Path(teacher_dir) / "train_meta.json", Path(teacher_dir) / "keras" / "model.keras"
    if not meta_path.is_file() or not keras_path.is_file():
        raise InputError(f"{teacher_dir}: --teacher needs a trained `--arch embedding` folder "
                         f"({meta_path.name} and {keras_path})")
    meta = read_json(meta_path, InputError)
    if not isinstance(meta, dict) or meta.get("task") != "kws-embedding":
        raise InputError(f"{meta_path}: not a speech-embedding head (task {meta.get('task') if isinstance(meta, dict) else None!r}); "
                         f"train one with: tinysense train kws --arch embedding")
    if meta.get("labels") != labels:
        raise InputError(f"{meta_path}: labels {meta.get('labels')} differ from this run's {labels}; use the same --words")
    return meta


def soft_targets(hard: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(N, classes) training targets: `(1 - weight) * one_hot(hard) + weight * teacher`.

    `hard` (N,) label indices, `teacher` (N, classes) posteriors; every row sums to 1.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight {weight} must be in [0, 1]")
    one_hot = np.eye(teacher.shape[1], dtype=np.float32)[hard]
    return (1.0 - weight) * one_hot + weight * teacher.astype(np.float32)


def teacher_posteriors(teacher_dir: Path, parts, role: str, cache: Path | None) -> np.ndarray:
    """(N, classes) the teacher's posteriors on the centred view of every clip of `role` in `parts`,
    in the order `trainer.kws_train.features_by_role` stacks them."""
    import keras

    from edge.hearing import embedding as emb
    from trainer.kws_embedding import SHIFT, cached_views, embedding_cache_dir, feature_models_sha

    features = emb.SpeechEmbedding.from_package()
    model_sha = feature_models_sha()
    head = keras.saving.load_model(Path(teacher_dir) / "keras" / "model.keras")
    out = []
    for corpus, roles in parts:
        chosen = roles == role
        if chosen.any():
            views = cached_views(corpus.clips, features, model_sha, embedding_cache_dir(cache))
            out.append(head.predict(views[chosen][:, SHIFT, ..., np.newaxis], batch_size=512, verbose=0))
    posteriors = np.concatenate(out) if out else np.zeros((0, head.output_shape[-1]), np.float32)
    log.info("teacher %s: posteriors on %d %s clips", teacher_dir, len(posteriors), role)
    return posteriors


def teacher_record(teacher_dir: Path, weight: float) -> dict:
    """train_meta.json's `training.teacher`: which head taught, by its weights' sha256, and how much."""
    return {"path": str(teacher_dir), "keras_sha256": sha256_file(Path(teacher_dir) / "keras" / "model.keras"),
            "weight": weight}
