"""A cascade bundle for the tests: the daemon's yes/no proposer (tests/stream/daemon_bundle.py)
and a speech-embedding confirmer trained on the same synthetic voice, put together by
`tinysense cascade`. The confirmer is trained through `train kws --arch embedding` on a Speech
Commands-layout folder of that voice (pitch and speed variants as "speakers"). About 40 s of CPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tests.stream.daemon_bundle import OTHER_WORDS, WORDS, augment
from tests.stream.speech import noise


def write_voice_data(root: Path) -> Path:
    """yes/, no/, _unknown_/ and _silence_/ clips of the test voice; speakers are voice variants."""
    from trainer.synth_speech import Speaker, synthesize_words

    rng = np.random.default_rng(1)
    for n, (pitch, speed) in enumerate((p, s) for p in (0.9, 1.0, 1.1) for s in (0.9, 1.0, 1.1)):
        speaker = f"{n + 1:08x}"
        spoken = synthesize_words([*WORDS, *OTHER_WORDS], Speaker("espeak-ng", "en-us", "", pitch, speed))
        for word, clip in zip([*WORDS, *OTHER_WORDS], spoken):
            folder, name = (word, f"{speaker}_nohash_0.wav") if word in WORDS else ("_unknown_", f"{word}_{speaker}_nohash_0.wav")
            (root / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / folder / name, augment(clip, rng), 16000, subtype="PCM_16")
        (root / "_silence_").mkdir(exist_ok=True)
        sf.write(root / "_silence_" / f"{n}.wav", noise(1.0, 500 + n, rms=float(rng.uniform(20, 400))), 16000, subtype="PCM_16")
    return root


def build_cascade_bundle(out_dir: Path, propose: Path) -> Path:
    from edge.cli import main

    out_dir = Path(out_dir)
    data = write_voice_data(out_dir / "voice")
    confirm = out_dir / "confirm-model"
    assert main(["-q", "train", "kws", "--arch", "embedding", "--words", *WORDS, "--data", str(data), "--no-synthetic",
                 "--cv-folds", "3", "--real-copies", "2", "--speech-negatives", "20", "--epochs", "12", "--batch-size", "16",
                 "--cache", str(out_dir / "cache"), "--out", str(confirm)]) == 0
    assert main(["-q", "export", str(confirm), "--variants", "float32,int8"]) == 0
    assert main(["-q", "cascade", "--propose", str(propose), "--confirm", str(confirm),
                 "--out", str(out_dir / "wakeword")]) == 0
    return out_dir / "wakeword"
