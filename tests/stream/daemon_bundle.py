"""A small KWS bundle that reliably spots "yes" and "no" spoken by ONE synthetic voice, for the
daemon's end-to-end tests, which check plumbing and timing rather than generalization.

The shared `kws_bundle` fixture generalizes over many voices but is too unsure (posteriors around
0.4) to assert which keyword fired and when; this one is trained on the test voice itself (pitch
and speed variants, shifted, with gain and noise), through the trainer's own fit and output code
and the real exporter. About 30 s of CPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.stream.speech import noise

WORDS = ("yes", "no")
OTHER_WORDS = ("seven", "house", "happy", "bird")
COPIES = 6


def augment(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift by up to 150 ms, gain of -6..+6 dB, pink-ish noise 10 to 30 dB below the speech."""
    shifted = np.roll(clip.astype(np.float64), int(rng.integers(-2400, 2401)))
    speech = shifted * 10 ** (rng.uniform(-6, 6) / 20)
    level = np.sqrt((speech ** 2).mean()) / 10 ** (rng.uniform(10, 30) / 20)
    mixed = speech + noise(1.0, int(rng.integers(1 << 30)), rms=max(level, 1.0))
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def build_daemon_bundle(out_dir: Path, voice=None) -> Path:
    from edge.cli import main
    from edge.hearing.frontend import RUNTIME_PARAMS, clips_features
    from edge.hearing.speech_commands import label_set
    from trainer.fit import FitConfig, fit
    from trainer.kws_models import tiny
    from trainer.kws_train import kws_meta
    from trainer.outputs import save_training_outputs
    from trainer.synth_speech import Speaker, synthesize_words

    voice = voice or Speaker("espeak-ng", "en-us")
    labels = label_set(WORDS)
    rng = np.random.default_rng(0)
    clips, y = [], []
    for pitch in (0.9, 1.0, 1.1):
        for speed in (0.9, 1.0, 1.1):
            spoken = synthesize_words([*WORDS, *OTHER_WORDS], Speaker(voice.engine, voice.voice, voice.variant,
                                                                      voice.pitch * pitch, voice.speed * speed))
            for word, clip in zip([*WORDS, *OTHER_WORDS], spoken):
                for _ in range(COPIES if clip is not None else 0):
                    clips.append(augment(clip, rng))
                    y.append(labels.index(word) if word in WORDS else 1)
    for n in range(60):
        clips.append(noise(1.0, 1000 + n, rms=float(rng.uniform(20, 600))))
        y.append(0)
    x, y = clips_features(clips)[..., np.newaxis], np.array(y)
    order = rng.permutation(len(y))
    held, train = order[:len(y) // 6], order[len(y) // 6:]
    model_dir = Path(out_dir) / "daemon-kws"
    shape = (*RUNTIME_PARAMS.feature_shape, 1)
    model, history = fit(lambda: tiny(shape, len(labels)), (x[train], y[train]), (x[held], y[held]), len(labels),
                         model_dir, FitConfig(epochs=30, batch_size=32, optimizer="adam", learning_rate=0.005))
    meta = kws_meta("daemon-kws", labels, RUNTIME_PARAMS, {"arch": "tiny", "voice": voice.id, "history": history},
                    {"source": "one synthetic voice, augmented (tests/stream/daemon_bundle.py)", "clips": len(y)})
    save_training_outputs(model_dir, model, meta, x[train], y[train], x[held], y[held], calibration_per_class=30, seed=0)
    assert main(["-q", "export", str(model_dir)]) == 0
    return model_dir
