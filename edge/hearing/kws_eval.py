"""Real speech for a keyword-spotting bundle: Speech Commands clips -> front-end features and labels.

`tinysense bench models/kws --data DIR` calls `load_eval_data`. Features come from `edge.hearing.frontend`,
the code the listening daemon runs, and each clip's label is mapped by name onto the model's label
order (the folder's keywords are the bundle's).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import InputError
from edge.hearing.frontend import RUNTIME_PARAMS, FrontendParams, check_bundle_frontend, clips_features
from edge.hearing.speech_commands import UNKNOWN, Item, keywords_of, load_items, read_clip

log = logging.getLogger(__name__)


def labelled_items(data_dir: str | Path, labels: list[str],
                   splits: tuple[str, ...] | None = None) -> tuple[list[Item], np.ndarray]:
    """The items of the clips in `splits` (all when None) whose label the model has, and their
    label indices into `labels`."""
    items = load_items(data_dir, keywords_of(labels))
    if splits is not None:
        items = [item for item in items if item.split in splits]
    index = {label: i for i, label in enumerate(labels)}
    skipped = sorted({item.label for item in items if item.label not in index})
    if skipped:
        log.warning("%s: skipping clips labelled %s (the model has no such class)", data_dir, ", ".join(skipped))
        items = [item for item in items if item.label in index]
    if not items:
        raise InputError(f"{data_dir}: no clips for the labels {', '.join(labels)}")
    return items, np.array([index[item.label] for item in items], dtype=np.int64)


def speech_commands_features(data_dir: str | Path, labels: list[str], splits: tuple[str, ...] | None = None,
                             frontend: FrontendParams = RUNTIME_PARAMS) -> tuple[np.ndarray, np.ndarray, list[Item]]:
    """Features (N, frames, channels, 1), label indices into `labels`, and the items, of the clips in
    `splits` (all when None) whose label the model has."""
    items, y = labelled_items(data_dir, labels, splits)
    x = clips_features((read_clip(item) for item in items), frontend)[..., np.newaxis]
    return x, y, items


def load_eval_data(bundle: Bundle, data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation clips of a Speech Commands folder as (model inputs, label indices).

    The official test-split packaging (it has `_unknown_/`) is evaluated whole; a full dataset
    folder contributes only its test split (testing_list.txt, else the speaker hash). A
    `kws-embedding` bundle gets the centred embedding view of each clip (edge.hearing.embedding,
    with the feature models the bundle carries), a `kws` bundle microfrontend features.
    """
    whole = (Path(data_dir) / UNKNOWN).is_dir()
    splits = None if whole else ("test",)
    if bundle.manifest.get("task") == "kws-embedding":
        from edge.hearing.embedding import SpeechEmbedding, clips_embeddings, embedding_settings

        settings = embedding_settings(bundle)
        items, y = labelled_items(data_dir, bundle.labels, splits)
        views = clips_embeddings((read_clip(item) for item in items), SpeechEmbedding.from_bundle(bundle),
                                 settings["frames"], settings.get("shift", 0))
        x = views[:, settings.get("shift", 0), ..., np.newaxis]
    else:
        frontend = check_bundle_frontend(bundle.manifest.get("frontend"), bundle.root / MANIFEST)
        x, y, _ = speech_commands_features(data_dir, bundle.labels, splits, frontend)
    log.info("%s: %d clips (%s)", data_dir, len(y), "all clips" if whole else "test split")
    return x, y
