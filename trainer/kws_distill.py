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
training (trainer.kws_embedding), so a corpus the teacher was trained on is not embedded again. A
head that heard a clip in training mostly gives its label back; a folder trained with
`--out-of-fold K` scores each clip with the head that never heard its speaker instead, so real
training clips get posteriors worth learning from.

`--teacher A --teacher B` teaches with the mean of both teachers' posteriors (MeanTeacher). On the
dev set's 5-fold CV (ds-cnn-l fine-tuned at weight 1.0), mltk alone gave 89.2 %, mltk with an
`--out-of-fold 4` embedding teacher 90.5 %, that teacher alone less than the mean; both for 40
epochs with `--validation-split 0` in every run 92.1 % (README).
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


def load_teacher(specs: list[str], labels: list[str], out_dir: Path, student_arch: str):
    """The teacher the `--teacher` options name, one or the mean of several (MeanTeacher). Each is
    exactly `mltk` (trainer.kws_mltk_teacher.MltkTeacher; a folder of that name is `./mltk`) or a
    trained embedding folder (EmbeddingTeacher), which cannot teach an `embedding` student. Every
    teacher has `posteriors(parts, role, cache)` and `record(weight)`."""
    from trainer import kws_mltk_teacher

    if len(set(specs)) < len(specs):
        raise InputError(f"--teacher {' '.join(specs)}: a teacher is named twice")
    teachers = []
    for spec in specs:
        if spec == kws_mltk_teacher.NAME:
            teachers.append(kws_mltk_teacher.MltkTeacher(labels))
            continue
        if student_arch == "embedding":
            raise InputError(f"--arch embedding distils only from --teacher {kws_mltk_teacher.NAME}, "
                             f"not from another embedding head")
        teachers.append(EmbeddingTeacher(*check_teacher(Path(spec), labels, out_dir), Path(spec)))
    return teachers[0] if len(teachers) == 1 else MeanTeacher(teachers)


def check_teacher(teacher_dir: Path, labels: list[str], out_dir: Path):
    """An embedding teacher's model (a Keras model, input (FRAMES, 96, 1)) and, for a folder trained
    with `--out-of-fold K`, its K heads (else None); InputError unless they are readable embedding
    heads with these labels, in another folder than the student's `out_dir`."""
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
    folds = (meta.get("training") or {}).get("out_of_fold")
    heads = [load_head(teacher_dir / "heads" / str(k) / "keras" / "model.keras", len(labels)) for k in range(folds or 0)]
    return load_head(keras_path, len(labels)), heads or None


def load_head(keras_path: Path, classes: int):
    """A Keras embedding head at `keras_path` that gives `classes` scores; InputError otherwise."""
    import keras

    from trainer.kws_embedding import FRAMES

    try:
        head = keras.saving.load_model(keras_path)
    except Exception as exc:  # Keras reports a damaged or missing file in many ways (ValueError, OSError, zipfile)
        raise InputError(f"{keras_path}: unreadable Keras model ({type(exc).__name__}); train the teacher again") from None
    if tuple(head.input_shape[1:]) != (FRAMES, EMBEDDING_DIM, 1) or head.output_shape[-1] != classes:
        raise InputError(f"{keras_path}: takes {head.input_shape[1:]} and gives {head.output_shape[-1]} scores, "
                         f"not an embedding head's ({FRAMES}, {EMBEDDING_DIM}, 1) and {classes}")
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
    """A trained `--arch embedding` folder as a teacher: its model, or with `fold_heads` (from
    `--out-of-fold K`) for each clip the head that never heard the clip's speaker."""

    def __init__(self, head, fold_heads: list | None, teacher_dir: Path):
        self.head, self.fold_heads, self.teacher_dir = head, fold_heads, Path(teacher_dir)

    def posteriors(self, parts, role: str, cache: Path | None) -> np.ndarray:
        """(N, classes) posteriors on the centred view of every clip of `role` in `parts`, in the
        order `trainer.kws_train.features_by_role` stacks them."""
        from edge.hearing import embedding as emb
        from trainer.kws_embedding import (SHIFT, cached_views, embedding_cache_dir, feature_models_sha,
                                           out_of_fold_partition)

        features = emb.SpeechEmbedding.from_package()
        model_sha = feature_models_sha()
        out = []
        for corpus, roles in parts:
            chosen = roles == role
            if not chosen.any():
                continue
            views = cached_views(corpus.clips, features, model_sha, embedding_cache_dir(cache))
            views = views[chosen][:, SHIFT, ..., np.newaxis]
            if self.fold_heads is None:
                out.append(self.head.predict(views, batch_size=512, verbose=0))
                continue
            partition = out_of_fold_partition(corpus.speakers[chosen], len(self.fold_heads))
            posteriors = np.zeros((len(views), self.head.output_shape[-1]), np.float32)
            for k, head in enumerate(self.fold_heads):
                if (partition == k).any():
                    posteriors[partition == k] = head.predict(views[partition == k], batch_size=512, verbose=0)
            out.append(posteriors)
        posteriors = np.concatenate(out) if out else np.zeros((0, self.head.output_shape[-1]), np.float32)
        log.info("teacher: %sposteriors on %d %s clips", "out-of-fold " if self.fold_heads else "", len(posteriors), role)
        return posteriors

    def record(self, weight: float) -> dict:
        """train_meta.json's `training.teacher`: which head taught, by its weights' sha256, and how much."""
        record = {"path": str(self.teacher_dir), "keras_sha256": sha256_file(self.teacher_dir / "keras" / "model.keras"),
                  "weight": weight}
        if self.fold_heads is not None:
            record["out_of_fold"] = len(self.fold_heads)
        return record


class MeanTeacher:
    """Several teachers as one: the mean of their posteriors (multi-teacher distillation, e.g. You
    et al. 2017, "Learning from Multiple Teacher Networks"). mltk and an embedding head learned from
    different real speech and agree on 77 % of augmented dev clips, so the mean knows more than either."""

    def __init__(self, teachers: list):
        self.teachers = teachers

    def posteriors(self, parts, role: str, cache: Path | None) -> np.ndarray:
        """(N, classes): the mean of every teacher's posteriors."""
        return np.mean([teacher.posteriors(parts, role, cache) for teacher in self.teachers], axis=0)

    def record(self, weight: float) -> dict:
        """train_meta.json's `training.teacher`: each teacher's record, and the weight of their mean."""
        return {"mean_of": [teacher.record(weight) for teacher in self.teachers], "weight": weight}
