"""The default keyword-spotting corpus, made offline from synthetic speakers and cached on disk.

For a keyword list (default: the 10 Speech Commands keywords) the corpus holds, per synthetic
speaker of `trainer.synth_speech.speaker_pool`, every keyword and a few words of UNKNOWN_WORDS
(`_unknown_`), plus `_silence_` clips of generated noise. Each utterance is stored clean and as
`copies - 1` augmented copies (`trainer.audio_augment`: speed, shift, reverb, noise at several
SNRs, gain), so a trainer that computes features once still sees rooms and microphones.
Speakers are split train/validation by voice (see `Speaker.split`), never across.

The cache folder is `<cache_dir>/<hash of the settings and installed voices>/` holding
`corpus.npz` and `manifest.json`; it is built in a temporary sibling folder and renamed into place,
so an interrupted build is never used. Default cache_dir: $TINYSENSE_CACHE/kws, else
~/.cache/tinysense/kws.

Public API:
    DEFAULT_KEYWORDS, UNKNOWN_WORDS
    parse_words(words) -> tuple[str, ...]           validated, lower-cased (InputError otherwise)
    CorpusConfig(keywords, speakers, unknown_per_speaker, copies, silence_clips, validation_percent,
                 seed, background_dir)              frozen; .key() is the cache hash
    Corpus: clips int16 (N, 16000), labels (N,) label names, label_names [_silence_, _unknown_, *kw],
            y (N,) indices into label_names, speakers (N,), split (N,) "train"/"validation"(/"test"),
            words (N,), source (N,) "synthetic"/"speech_commands"; .select(mask) .counts() .describe()
    load_corpus(words=DEFAULT_KEYWORDS, *, cache_dir=None, seed=0, config=None, processes=2,
                progress=True) -> Corpus            builds on first use, then loads from the cache
    speech_commands_corpus(root, words, *, silence_clips=None, seed=0) -> Corpus  real clips, same form
    concatenate(corpora) -> Corpus
Command line: python -m trainer.kws_corpus [--words ...] [--speakers N] [--cache-dir DIR] [--processes N]
              [--background DIR] [--list-voices]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.core.fileio import atomic_save_npz, atomic_write_json, sha256_file
from edge.hearing.speech_commands import SILENCE, UNKNOWN, fold_key, label_set, load_background_noise, load_items, read_clip
from trainer.audio_augment import AugmentConfig, Augmenter
from trainer.synth_speech import APT_PACKAGES, MAX_SPEEDUP, Speaker, installed_voices, speaker_pool, synthesize_words

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when synthesis or augmentation changes what a cached corpus holds (2: piper, seeded)
DEFAULT_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

#: Other words for `_unknown_`: Speech Commands' 25 auxiliary words, then common English words of
#: one to three syllables. Keywords and their homophones (same espeak-ng phonemes) are removed per
#: keyword list, so "know" never teaches the model that "no" is unknown.
UNKNOWN_WORDS = tuple("""
backward bed bird cat dog eight five follow forward four happy house learn marvin nine one seven
sheila six three tree two visual wow zero
about above after again air all almost along also always animal answer apple area army around
art ask baby back ball bank base basket bear beautiful because become before begin behind believe
below best better between big black blue board boat body book both bottle box boy bread break
bring brother brown build burn busy buy cake call came camera can car card care carry center
chair change cheap check child circle city class clean clear clock close cloud coffee cold color
come common cook cool corner could count country cover cow cross cup cut dance dark day dear deep
desk dinner doctor does done door double dream dress drink drive drop dry during each early earth
east easy eat edge egg eleven empty end enough even evening every eye face fall family far farm
fast father feel few field fill find fine finger fire first fish flat floor flower fly food foot
forest forget fork free friend from front fruit full game garden gate gentle get girl give glass
gold good grass great green ground group grow hair half hand happen hard hat have head hear heart
heavy hello help here high hill hold home horse hot hour how hundred idea inside island jump just
keep key kind king kitchen lake land large last late laugh lead leaf less letter light like line
lion listen little live long look love low lunch machine magic make many map market may maybe
meet middle might milk minute money month moon more morning mother mountain mouse move much music
must name near need never new next nice night noise north nothing now number ocean often old only
open orange other over page paint paper park party pass past pen people pepper person picture
piece pink place plant play please pocket point potato pretty pull purple push queen question
quick quiet rain read ready red remember rest rice rich ride ring river road rock roof room round
rule run sad salt same sand say school sea season second see seed sell send shape sheep ship shoe
short show sick side sign silver simple sing sister sit size sky sleep slow small smile snow soft
some song soon sound south space speak spring square star start station stone story street strong
study sugar summer sun sure sweet table take talk tall teacher tell ten than thank that there
these thing think this though thousand through time today together tomorrow tonight too top touch
town toy train travel turn twelve twenty under until use valley very village visit voice wait
walk wall want warm wash watch water way wear weather week well west wet what wheel when where
which while white who why wide wild will wind window winter wish with without woman wonder wood
word work world would write year yellow young
""".split())

_WORD = re.compile(r"^[a-z']+( [a-z']+)*$")


def parse_words(words) -> tuple[str, ...]:
    """Validated keywords: lower-cased letters, apostrophes and single spaces; no duplicates; not empty.

    Accepts a list of words or one comma-separated string.
    """
    if isinstance(words, str):
        words = words.split(",")
    cleaned = [" ".join(str(word).lower().split()) for word in words]
    if not cleaned or any(not word for word in cleaned):
        raise InputError("--words needs at least one non-empty keyword")
    bad = [word for word in cleaned if not _WORD.match(word)]
    if bad:
        raise InputError(f"keywords may contain only letters, apostrophes and spaces: {', '.join(map(repr, bad))}")
    duplicates = sorted(word for word, n in Counter(cleaned).items() if n > 1)
    if duplicates:
        raise InputError(f"duplicate keywords: {', '.join(duplicates)}")
    return tuple(cleaned)


def default_cache_dir() -> Path:
    root = os.environ.get("TINYSENSE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "tinysense") / "kws"


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that decides a corpus's content; its hash names the cache folder."""

    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    speakers: int = 250
    unknown_per_speaker: int = 5
    copies: int = 3  # per utterance: the clean clip + (copies - 1) augmented
    silence_clips: int | None = None  # default: as many as an average keyword
    validation_percent: float = 15.0
    seed: int = 0
    background_dir: str | None = None  # a `_background_noise_` folder's parent, for noise mixing
    engines: tuple[str, ...] | None = None  # synthesizers to speak with (default: every installed one)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def key(self) -> str:
        """Hash of the settings, the format version and the installed voices (new voices, new corpus)."""
        blob = json.dumps({"format": FORMAT_VERSION, "config": asdict(self), "voices": installed_voices()},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass
class Corpus:
    """Clips and their per-clip metadata, all arrays of the same length N."""

    clips: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    speakers: np.ndarray
    split: np.ndarray
    words: np.ndarray
    source: np.ndarray

    @property
    def y(self) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.label_names)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> Corpus:
        return Corpus(self.clips[mask], self.labels[mask], list(self.label_names), self.speakers[mask],
                      self.split[mask], self.words[mask], self.source[mask])

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {label: clips}} in label order."""
        return {split: {label: int(np.sum((self.split == split) & (self.labels == label))) for label in self.label_names}
                for split in sorted(set(self.split.tolist()))}

    def describe(self) -> dict:
        """A JSON-able summary for train_meta.json."""
        return {"clips": len(self), "labels": self.label_names, "counts": self.counts(),
                "speakers": {split: len(set(self.speakers[(self.split == split) & (self.labels != SILENCE)].tolist()))
                             for split in sorted(set(self.split.tolist()))},
                "sources": dict(Counter(self.source.tolist()))}

    def save(self, path: Path) -> None:
        atomic_save_npz(path, clips=self.clips, labels=self.labels, label_names=np.array(self.label_names),
                        speakers=self.speakers, split=self.split, words=self.words, source=self.source)

    @classmethod
    def load(cls, path: Path) -> Corpus:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["clips"], data["labels"], data["label_names"].tolist(), data["speakers"], data["split"],
                       data["words"], data["source"])


def concatenate(corpora: list[Corpus]) -> Corpus:
    """One corpus from several with the same label names (e.g. synthetic + Speech Commands)."""
    names = corpora[0].label_names
    if any(c.label_names != names for c in corpora):
        raise InputError("cannot mix corpora with different labels: " + "; ".join(map(str, (c.label_names for c in corpora))))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in corpora])

    return Corpus(joined("clips"), joined("labels"), list(names), joined("speakers"), joined("split"), joined("words"),
                  joined("source"))


def _phonemes(words: list[str]) -> list[str]:
    """espeak-ng's phoneme string per word (one process for all), to spot homophones."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", "en-us"], input="\n".join(words).encode(),
                         capture_output=True, check=True).stdout.decode().split("\n")
    lines = [line.strip().replace("'", "").replace(",", "") for line in out if line.strip()]
    return lines if len(lines) == len(words) else list(words)


def unknown_vocabulary(keywords: tuple[str, ...]) -> list[str]:
    """UNKNOWN_WORDS minus the keywords and anything that sounds exactly like one."""
    candidates = [w for w in UNKNOWN_WORDS if w not in keywords]
    if "espeak-ng" not in installed_voices():
        return candidates
    sounds = _phonemes([*keywords, *candidates])
    keyword_sounds = set(sounds[:len(keywords)])
    kept = [w for w, s in zip(candidates, sounds[len(keywords):]) if s not in keyword_sounds]
    dropped = sorted(set(candidates) - set(kept))
    if dropped:
        log.info("unknown words dropped as homophones of a keyword: %s", ", ".join(dropped))
    return kept


def _speak(task: tuple[Speaker, list[str], list[str], int, CorpusConfig]
           ) -> tuple[Speaker, list[tuple[str, str, np.ndarray]], list[str]]:
    """Worker: one speaker's words -> [(label, word, clip)] with augmented copies, and the rejected words."""
    speaker, words, labels, seed, config = task
    augmenter = Augmenter(config.augment, _background(config.background_dir))
    rng = np.random.default_rng(seed)
    out, rejected = [], []
    for word, label, clip in zip(words, labels, synthesize_words(words, speaker)):
        if clip is None:
            rejected.append(word)
            continue
        out.append((label, word, clip))
        out.extend((label, word, augmenter(clip, rng)) for _ in range(config.copies - 1))
    return speaker, out, rejected


@functools.cache
def _background(folder: str | None) -> dict[str, np.ndarray]:
    return load_background_noise(folder) if folder else {}


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)


def build_corpus(config: CorpusConfig, processes: int = 2, progress: bool = True) -> tuple[Corpus, dict]:
    """Synthesize and augment the whole corpus (no caching here); returns it and build statistics."""
    started = time.perf_counter()
    speakers = speaker_pool(config.speakers, seed=config.seed, engines=list(config.engines) if config.engines else None)
    vocabulary = unknown_vocabulary(config.keywords)
    rng = np.random.default_rng(config.seed)
    tasks = []
    for n, speaker in enumerate(speakers):
        unknown = [str(w) for w in rng.choice(vocabulary, size=min(config.unknown_per_speaker, len(vocabulary)), replace=False)]
        words = [*config.keywords, *unknown]
        tasks.append((speaker, words, [*config.keywords, *[UNKNOWN] * len(unknown)], config.seed * 100003 + n, config))
    rows: list[tuple[str, str, str, str, np.ndarray]] = []
    rejected: Counter[str] = Counter()
    context = multiprocessing.get_context("spawn")  # safe even when TensorFlow is loaded in the parent
    with context.Pool(processes) if processes > 1 else _Serial() as pool, _progress(progress) as bar:
        job = bar.add_task("synthesizing speakers", total=len(tasks))
        for speaker, out, missed in pool.imap_unordered(_speak, tasks):
            rejected.update(missed)
            rows.extend((label, word, speaker.id, speaker.split(config.validation_percent), clip)
                        for label, word, clip in out)
            bar.advance(job)
    rows.sort(key=lambda row: row[2])  # imap_unordered: order by speaker (stable within one)
    keyword_rows = Counter(row[0] for row in rows if row[0] in config.keywords)
    _check_keywords(config.keywords, keyword_rows, rejected, len(speakers))
    silence_count = config.silence_clips if config.silence_clips is not None else int(
        np.mean(list(keyword_rows.values())) if keyword_rows else 100)
    augmenter = Augmenter(config.augment, _background(config.background_dir))
    for n in range(silence_count):
        split = "validation" if rng.random() < config.validation_percent / 100 else "train"
        rows.append((SILENCE, SILENCE, f"noise:{n}", split, augmenter.silence(rng)))
    labels, words, speaker_ids, splits, clips = zip(*rows)
    corpus = Corpus(np.stack(clips).astype(np.int16), np.array(labels), label_set(config.keywords),
                    np.array(speaker_ids), np.array(splits), np.array(words), np.full(len(rows), "synthetic"))
    stats = {"seconds": round(time.perf_counter() - started, 1), "speakers": len(speakers),
             "speakers_per_split": dict(Counter(s.split(config.validation_percent) for s in speakers)),
             "engines": dict(Counter(s.engine for s in speakers)), "unknown_vocabulary": len(vocabulary),
             "rejected_utterances": dict(rejected), "processes": processes}
    return corpus, stats


def _check_keywords(keywords: tuple[str, ...], clips: Counter, rejected: Counter, speakers: int) -> None:
    """A keyword no speaker could fit into a clip is an error; one most could not, a warning."""
    missing = [word for word in keywords if clips[word] == 0]
    if missing:
        raise InputError(f"no synthetic speaker says {', '.join(map(repr, missing))} within the 1 s clip "
                         f"(too long even {MAX_SPEEDUP}x faster): choose shorter keywords")
    for word in keywords:
        if rejected[word] > speakers / 2:
            log.warning("%r is too long for the 1 s clip for %d of %d speakers", word, rejected[word], speakers)


class _Serial:
    """Pool stand-in for processes=1 (tests, debugging): same interface, this process."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap_unordered(function, tasks):
        return map(function, tasks)


def _valid(folder: Path) -> bool:
    """A cache folder whose corpus.npz matches the sha256 in its manifest."""
    manifest_path, data_path = folder / "manifest.json", folder / "corpus.npz"
    if not (manifest_path.is_file() and data_path.is_file()):
        return False
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8")).get("sha256") == sha256_file(data_path)
    except (OSError, ValueError):
        return False


def _load_cached(folder: Path) -> Corpus | None:
    if _valid(folder):
        log.info("synthetic corpus from cache %s", folder)
        return Corpus.load(folder / "corpus.npz")
    if folder.exists():
        log.warning("cached corpus %s is incomplete or does not match its manifest; rebuilding", folder)
    return None


def load_corpus(words=DEFAULT_KEYWORDS, *, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                config: CorpusConfig | None = None, processes: int = 2, progress: bool = True) -> Corpus:
    """The corpus for `words` from the cache, built (and cached atomically) on first use.

    `config` overrides everything but is checked against `words`; `seed` picks another corpus.
    """
    keywords = parse_words(words)
    config = config or CorpusConfig(keywords=keywords, seed=seed)
    if config.keywords != keywords:
        raise InputError(f"corpus config keywords {config.keywords} differ from --words {keywords}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / config.key()
    cached = _load_cached(folder)
    if cached is not None:
        return cached
    log.info("building the synthetic corpus for %s into %s (%d speakers, %d processes)", ", ".join(keywords), folder,
             config.speakers, processes)
    corpus, stats = build_corpus(config, processes=processes, progress=progress)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".building", dir=root))
    try:
        corpus.save(staging / "corpus.npz")
        atomic_write_json(staging / "manifest.json", {
            "format_version": FORMAT_VERSION, "key": folder.name, "config": asdict(config), "voices": installed_voices(),
            "build": stats, "describe": corpus.describe(), "sha256": sha256_file(staging / "corpus.npz")})
        if folder.exists() and not _valid(folder):
            shutil.rmtree(folder)  # a corrupt one; a valid one (a concurrent build's) is kept as it is
        if not folder.exists():
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("synthetic corpus: %d clips from %d speakers in %.0f s -> %s", len(corpus), stats["speakers"],
             stats["seconds"], folder)
    return corpus


def speech_commands_corpus(root: str | os.PathLike, words=DEFAULT_KEYWORDS, *, silence_clips: int | None = None,
                           seed: int = 0) -> Corpus:
    """Real Speech Commands clips as a Corpus (splits from the folder's lists or speaker hash).

    A folder without `_silence_/` gets `silence_clips` (default: an average keyword's count)
    1 s windows of its `_background_noise_` recordings, split like the synthetic silence.
    """
    keywords = parse_words(words)
    items = load_items(root, keywords)
    clips = [read_clip(item) for item in items]
    labels = [item.label for item in items]
    speakers = [fold_key(item.path) for item in items]
    splits, spoken = [item.split for item in items], [item.word for item in items]
    background = load_background_noise(root)
    if SILENCE not in labels and background:
        per_keyword = Counter(label for label in labels if label in keywords)
        count = silence_clips if silence_clips is not None else int(np.mean(list(per_keyword.values())))
        rng = np.random.default_rng(seed)
        augmenter = Augmenter(AugmentConfig(recording_probability=1.0), background)
        for n in range(count):
            clips.append(augmenter.silence(rng))
            labels.append(SILENCE)
            speakers.append(f"sc:noise:{n}")
            splits.append(("train", "validation", "test")[int(rng.choice(3, p=[0.8, 0.1, 0.1]))])
            spoken.append(SILENCE)
    return Corpus(np.stack(clips).astype(np.int16), np.array(labels), label_set(keywords), np.array(speakers),
                  np.array(splits), np.array(spoken), np.full(len(labels), "speech_commands"))


def main(argv: list[str] | None = None) -> int:
    """Build (or find) the corpus and print its counts."""
    from edge.core.errors import TinysenseError

    parser = argparse.ArgumentParser(prog="python -m trainer.kws_corpus", description=main.__doc__)
    parser.add_argument("--words", nargs="+", default=list(DEFAULT_KEYWORDS), metavar="WORD",
                        help="keywords (default: the 10 Speech Commands keywords)")
    parser.add_argument("--speakers", type=int, default=CorpusConfig.speakers, help="synthetic speakers (default: %(default)s)")
    parser.add_argument("--unknown-per-speaker", type=int, default=CorpusConfig.unknown_per_speaker,
                        help="other words each speaker says for _unknown_ (default: %(default)s)")
    parser.add_argument("--copies", type=int, default=CorpusConfig.copies,
                        help="clips per utterance: clean + augmented (default: %(default)s)")
    parser.add_argument("--background", type=Path, default=None, metavar="DIR",
                        help="a folder with _background_noise_/ to mix recorded noise in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {default_cache_dir()})")
    parser.add_argument("--processes", type=int, default=2, help="synthesis processes (default: %(default)s)")
    parser.add_argument("--list-voices", action="store_true", help="print the installed synthesizers and voices, then exit")
    args = parser.parse_args(argv)
    if args.list_voices:
        voices = installed_voices()
        for engine, package in APT_PACKAGES.items():
            print(f"{engine}: {' '.join(voices[engine]) if engine in voices else f'not installed (apt install {package})'}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        keywords = parse_words(args.words)
        config = CorpusConfig(keywords=keywords, speakers=args.speakers, unknown_per_speaker=args.unknown_per_speaker,
                              copies=args.copies, seed=args.seed,
                              background_dir=str(args.background.resolve()) if args.background else None)
        corpus = load_corpus(keywords, cache_dir=args.cache_dir, config=config, processes=args.processes)
    except TinysenseError as exc:
        print(f"python -m trainer.kws_corpus: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(corpus.describe(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
