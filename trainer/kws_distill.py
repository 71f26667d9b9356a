"""`train kws --teacher DIR|mltk`: knowledge distillation into a small model from a teacher that
learned real speech.

Two teachers: a trained `--arch embedding` folder (its head sits on Google's speech embedding,
which learned from a great deal of real speech; it teaches the ds-cnn family), or `mltk`, Silicon
Labs' keyword spotter trained on the Speech Commands training split (trainer.kws_mltk_teacher; it
teaches every --arch). Either one's posteriors on a synthetic clip say which real words the clip
sounds like. The student trains on `(1 - weight) * one-hot label + weight * teacher posteriors`
for every training clip (synthetic, real, augmented copies, enrolled), the soft-target loss of
Hinton, Vinyals and Dean (2015, "Distilling the Knowledge in a Neural Network") at temperature 1,
where cross-entropy against the mixed targets equals the weighted sum of the hard and soft losses. The teacher runs in training
only: nothing of it goes into the student's bundle.

An embedding teacher's embeddings come from the same per-clip-set cache as `--arch embedding`
training (trainer.kws_embedding), so a corpus the teacher was trained on is not embedded again.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.core.fileio import read_json, sha256_file
from edge.hearing.embedding import EMBEDDING_DIM

log = logging.getLogger(__name__)


#: The teacher's share of each target unless --distill-weight says otherwise.
DEFAULT_WEIGHT = 0.5


def load_teacher(spec: str, labels: list[str], out_dir: Path, student_arch: str):
    """The teacher `--teacher` names: exactly `mltk` (trainer.kws_mltk_teacher.MltkTeacher; a
    folder of that name is `./mltk`) or a trained embedding folder (EmbeddingTeacher), which cannot
    teach an `embedding` student. Either has `posteriors(parts, role, cache)` and `record(weight)`."""
    from trainer import kws_mltk_teacher

    if spec == kws_mltk_teacher.NAME:
        return kws_mltk_teacher.MltkTeacher(labels)
    if student_arch == "embedding":
        raise InputError(f"--arch embedding distils only from --teacher {kws_mltk_teacher.NAME}, "
                         f"not from another embedding head")
    return EmbeddingTeacher(check_teacher(Path(spec), labels, out_dir), Path(spec))


def check_teacher(teacher_dir: Path, labels: list[str], out_dir: Path):
    """An embedding teacher's head (a Keras model, input (FRAMES, 96, 1)); InputError unless it is a
    readable embedding head with these labels, in another folder than the student's `out_dir`."""
    import keras

    from trainer.kws_embedding import FRAMES

    meta_path, keras_path = Path(teacher_dir) / "train_meta.json", Path(teacher_dir) / "keras" / "model.keras"
    if Path(teacher_dir).resolve() == Path(out_dir).resolve():
        raise InputError(f"{teacher_dir}: --out is the teacher's folder; the student would overwrite its teacher")
    if not meta_path.is_file() or not keras_path.is_file():
        hint = " (the packaged teacher is spelled mltk)" if str(teacher_dir).lower() == "mltk" else ""
        raise InputError(f"{teacher_dir}: --teacher needs a trained `--arch embedding` folder "
                         f"({meta_path.name} and {keras_path}){hint}")
    meta = read_json(meta_path, InputError)
    if not isinstance(meta, dict) or meta.get("task") != "kws-embedding":
        raise InputError(f"{meta_path}: not a speech-embedding head (task {meta.get('task') if isinstance(meta, dict) else None!r}); "
                         f"train one with: tinysense train kws --arch embedding")
    if meta.get("labels") != labels:
        raise InputError(f"{meta_path}: labels {meta.get('labels')} differ from this run's {labels}; use the same --words")
    try:
        head = keras.saving.load_model(keras_path)
    except Exception as exc:  # Keras reports a damaged file in many ways (ValueError, OSError, zipfile errors)
        raise InputError(f"{keras_path}: unreadable Keras model ({type(exc).__name__}); train the teacher again") from None
    if tuple(head.input_shape[1:]) != (FRAMES, EMBEDDING_DIM, 1) or head.output_shape[-1] != len(labels):
        raise InputError(f"{keras_path}: takes {head.input_shape[1:]} and gives {head.output_shape[-1]} scores, "
                         f"not an embedding head's ({FRAMES}, {EMBEDDING_DIM}, 1) and {len(labels)}")
    return head


def soft_targets(hard: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(N, classes) training targets: `(1 - weight) * one_hot(hard) + weight * teacher`.

    `hard` (N,) label indices, `teacher` (N, classes) posteriors; every row sums to 1.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight {weight} must be in [0, 1]")
    one_hot = np.eye(teacher.shape[1], dtype=np.float32)[hard]
    return (1.0 - weight) * one_hot + weight * teacher.astype(np.float32)


class EmbeddingTeacher:
    """A trained `--arch embedding` head as a teacher."""

    def __init__(self, head, teacher_dir: Path):
        self.head, self.teacher_dir = head, Path(teacher_dir)

    def posteriors(self, parts, role: str, cache: Path | None) -> np.ndarray:
        """(N, classes) the head's posteriors on the centred view of every clip of `role` in
        `parts`, in the order `trainer.kws_train.features_by_role` stacks them."""
        from edge.hearing import embedding as emb
        from trainer.kws_embedding import SHIFT, cached_views, embedding_cache_dir, feature_models_sha

        features = emb.SpeechEmbedding.from_package()
        model_sha = feature_models_sha()
        out = []
        for corpus, roles in parts:
            chosen = roles == role
            if chosen.any():
                views = cached_views(corpus.clips, features, model_sha, embedding_cache_dir(cache))
                out.append(self.head.predict(views[chosen][:, SHIFT, ..., np.newaxis], batch_size=512, verbose=0))
        posteriors = np.concatenate(out) if out else np.zeros((0, self.head.output_shape[-1]), np.float32)
        log.info("teacher: posteriors on %d %s clips", len(posteriors), role)
        return posteriors

    def record(self, weight: float) -> dict:
        """train_meta.json's `training.teacher`: which head taught, by its weights' sha256, and how much."""
        return {"path": str(self.teacher_dir), "keras_sha256": sha256_file(self.teacher_dir / "keras" / "model.keras"),
                "weight": weight}
