"""Custom wake word from synthetic voices plus N enrolment speakers, measured on real speech.

    python -m trainer.custom_word_bench --data ../shared/data/speech_commands_dev --word three \
        [--enrol 0,5,10] [--draws 3] [--work /tmp/custom_word] [--json FILE]

The custom word is one of the dev set's `_unknown_` words (files `<word>_<speaker>_nohash_<n>.wav`).
For each draw the word's speakers are shuffled (seeded); enrolment with N speakers takes all clips
of the first N, and the test speakers are those after max(--enrol) in the same order, so every N of
a draw is scored on the same held-out speakers.

  * N = 0: `tinysense train kws --arch embedding --words WORD` on the synthetic corpus alone
    (trained once per word; its head is the start of every fine-tune).
  * N > 0: the enrolment clips are copied into a folder and the head fine-tuned from the N = 0
    model with `train kws --arch embedding --words WORD --enrol DIR --init-from BASE`, the path a
    user runs (`trainer.kws_enrol`); its wall time is reported.

Scores, at the model's own detection threshold (train_meta.json `detection.threshold`, 0.6) and
at each of --thresholds (default 0.9, 0.975; the float Keras head, not an exported variant):
  * recall: held-out speakers' clips of the word whose posterior of the word, on the clip's
    centred 10-embedding view (what `bench --data` scores), is at or above the threshold;
  * clip false-accept rate: the same on every other dev clip (all other words, `_silence_`);
  * false accepts per hour: every dev clip placed 2 s apart over the dev `_background_noise_`
    (`edge.bench.stream.speech_stream`: 5-20 dB SNR, -30 dB room noise between clips), embedded as
    a stream (`edge.hearing.embedding.EmbeddingStream`), the head run at every 80 ms step on the
    last 10 embeddings, and the daemon's `Decider` (smoothing, min_count, refractory from the
    model's `detection`) replayed; a detection not within an utterance of the word (start to 1.5 s
    after its end, `edge.bench.stream.score`) is a false accept. Hours are the whole stream's
    (1.52 h, 2734 utterances: far denser speech than a room's, so the rate is pessimistic);
    `false_accepts_on_speech` counts those within another word's utterance.

Prints a markdown table; the JSON (--json, default WORK/results.json) holds every draw.

Dev-set clip embeddings and the stream's embeddings are computed once and cached under --work.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from edge.core.errors import InputError, TinysenseError
from edge.core.fileio import atomic_save_npz, atomic_write_json, read_json, sha256_file
from edge.hearing import embedding as emb
from edge.hearing.audio import SAMPLE_RATE
from edge.hearing.speech_commands import SILENCE, UNKNOWN, load_items, read_clip
from trainer.kws_corpus import DEFAULT_KEYWORDS
from trainer.kws_embedding import FRAMES, SHIFT, cached_views, embedding_cache_dir

log = logging.getLogger(__name__)

STREAM_SEED = 0


@dataclasses.dataclass
class DevSet:
    """Every dev clip (not `_background_noise_`): paths, words, speakers, 1 s clips, centred views."""

    paths: list[Path]
    words: np.ndarray
    speakers: np.ndarray
    clips: np.ndarray
    views: np.ndarray  #: (N, FRAMES, 96) the centred view of each clip


def model_sha() -> str:
    return hashlib.sha256("".join(sha256_file(p) for p in emb.packaged_model_paths().values()).encode()).hexdigest()


def load_dev(data: Path, features: emb.SpeechEmbedding, cache: Path) -> DevSet:
    """The dev folder's clips with their embeddings (cached like the trainer's)."""
    items = load_items(data, DEFAULT_KEYWORDS)
    if not items:
        raise InputError(f"{data}: no Speech Commands clips")
    clips = np.stack([read_clip(item) for item in items])
    views = cached_views(clips, features, model_sha(), embedding_cache_dir(cache))[:, SHIFT]
    return DevSet([item.path for item in items], np.array([item.word for item in items]),
                  np.array([item.speaker for item in items]), clips, views)


def dev_stream(data: Path, dev: DevSet, features: emb.SpeechEmbedding, work: Path):
    """(Stream of every dev clip, its embeddings (steps, 96), end time in s of each embedding)."""
    from edge.bench.stream import load_noise, speech_stream

    rng = np.random.default_rng(STREAM_SEED)
    order = rng.permutation(len(dev.clips))
    stream = speech_stream("dev", [(str(dev.words[i]), dev.clips[i]) for i in order], load_noise(data), rng)
    key = hashlib.sha256(stream.audio.tobytes() + model_sha().encode()).hexdigest()[:16]
    path = work / f"stream-{key}.npz"
    if path.is_file():
        with np.load(path) as cached:
            embeddings = cached["embeddings"]
    else:
        started = time.perf_counter()
        embeddings = emb.EmbeddingStream(features).process(stream.audio)
        log.info("embedded the %.2f h dev stream in %.0f s", stream.hours, time.perf_counter() - started)
        atomic_save_npz(path, embeddings=embeddings)
    # Embedding k (0-based) ends with step k + WARMUP_STEPS + 1.
    times = (np.arange(len(embeddings)) + emb.WARMUP_STEPS + 1) * emb.STEP_SAMPLES / SAMPLE_RATE
    return stream, embeddings, times


def word_speakers(dev: DevSet, word: str) -> list[str]:
    """The dev speakers who say `word`, sorted; InputError when none do."""
    speakers = sorted(set(dev.speakers[dev.words == word].tolist()))
    if not speakers:
        known = sorted(set(dev.words[[p.parent.name == UNKNOWN for p in dev.paths]].tolist()))
        raise InputError(f"no dev clip says {word!r}; the _unknown_ words are {', '.join(known)}")
    return speakers


def train_model(argv: list[str]) -> float:
    """Run `tinysense train kws ARGV` in this process; its wall time in s (TinysenseError if it fails)."""
    from edge.cli import main

    started = time.perf_counter()
    if main(["-q", "train", "kws", *argv]) != 0:
        raise TinysenseError(f"tinysense train kws {' '.join(argv)} failed (see above)")
    return time.perf_counter() - started


def _inside(spans: np.ndarray, t: float) -> bool:
    return bool(len(spans)) and bool(((spans[:, 0] <= t) & (t <= spans[:, 1])).any())


class Scorer:
    """A trained head's word posterior on the dev clips and on the dev stream (computed once), and
    the figures at any threshold."""

    def __init__(self, model_dir: Path, word: str, dev: DevSet, stream_parts):
        import keras
        from numpy.lib.stride_tricks import sliding_window_view

        self.meta = read_json(model_dir / "train_meta.json", InputError)
        model = keras.saving.load_model(model_dir / "keras" / "model.keras")
        self.labels, self.word = self.meta["labels"], word
        self.threshold = float(self.meta["detection"]["threshold"])
        column = self.labels.index(word)
        self.clip_scores = model.predict(dev.views[..., np.newaxis], batch_size=1024, verbose=0)[:, column]
        self.stream, embeddings, times = stream_parts
        windows = sliding_window_view(embeddings, (FRAMES, emb.EMBEDDING_DIM))[:, 0]
        self.stream_probs = np.concatenate([model.predict(windows[i:i + 8192, ..., np.newaxis], batch_size=2048,
                                                          verbose=0) for i in range(0, len(windows), 8192)])
        self.stream_times = times[FRAMES - 1:]  # each window ends with its last embedding
        self.stream_words = {w for w, _, _ in self.stream.events}

    def stream_false_accepts(self, threshold: float) -> dict:
        """Detections on the dev stream (the daemon's Decider replayed over the recorded posteriors),
        scored with the word's clips as the only targets; a false accept within an utterance of
        another word (to HIT_WINDOW s after it; not a `_silence_` window) is 'on speech'."""
        from edge.bench.stream import HIT_WINDOW, Stream, replay, score
        from edge.hearing.spotter import DetectionParams

        run = {"labels": self.labels, "probs": self.stream_probs, "times": self.stream_times,
               "detection": DetectionParams.from_dict(self.meta["detection"])}
        detections = replay(run, threshold)
        events = [(w if w == self.word else "_other_", s, e) for w, s, e in self.stream.events]
        scored = score(Stream(self.stream.name, self.stream.audio, events), detections)
        spans = {kind: np.array([(s, e + HIT_WINDOW) for w, s, e in self.stream.events if w in words])
                 for kind, words in (("word", {self.word}), ("other", set(self.stream_words) - {self.word, SILENCE}))}
        stray = [t for _, _, t in detections if not _inside(spans["word"], t)]
        on_speech = min(sum(_inside(spans["other"], t) for t in stray), scored["false_accepts"])
        return {"false_accepts": scored["false_accepts"], "false_accepts_on_speech": on_speech,
                "hours": round(self.stream.hours, 3),
                "false_accepts_per_hour": round(scored["false_accepts_per_hour"], 2),
                "stream_hits": scored["hits"], "stream_utterances": scored["utterances"]}

    def evaluate(self, dev: DevSet, test_speakers: list[str], thresholds: list[float]) -> dict:
        """Per threshold: recall on the test speakers' clips of the word, clip false accepts on every
        other dev clip, and the stream's false accepts."""
        positive = (dev.words == self.word) & np.isin(dev.speakers, test_speakers)
        negative = dev.words != self.word
        out = {"test_speakers": len(test_speakers), "test_clips": int(positive.sum()),
               "negative_clips": int(negative.sum()), "at": {}}
        for threshold in dict.fromkeys([self.threshold, *thresholds]):
            hits = int((self.clip_scores[positive] >= threshold).sum())
            false = int((self.clip_scores[negative] >= threshold).sum())
            out["at"][f"{threshold:g}"] = {
                "recall": round(hits / max(int(positive.sum()), 1), 4), "hits": hits, "clip_false_accepts": false,
                "clip_false_accept_rate": round(false / int(negative.sum()), 5),
                **self.stream_false_accepts(threshold)}
        return out


def measure_word(args, word: str, dev: DevSet, stream_parts) -> dict:
    """Base model, then per draw and N the fine-tune and its scores (see the module docstring)."""
    work = args.work / word
    speakers = word_speakers(dev, word)
    sizes = [n for n in args.enrol if n <= len(speakers) - args.min_test_speakers]
    skipped = sorted(set(args.enrol) - set(sizes))
    if skipped:
        log.warning("%s: %d speakers; N = %s leave fewer than %d test speakers, skipped", word, len(speakers),
                    skipped, args.min_test_speakers)
    common = ["--arch", "embedding", "--words", word, "--synthetic-speakers", str(args.synthetic_speakers),
              "--cache", str(args.work / "cache"), "--seed", "0"]
    base = work / "base"
    if not (base / "train_meta.json").is_file():
        train_model([*common, "--out", str(base)])
    base_scorer = Scorer(base, word, dev, stream_parts)
    result = {"word": word, "speakers": len(speakers), "clips": int((dev.words == word).sum()),
              "enrol_sizes": sizes, "skipped_sizes": skipped,
              "base_train_seconds": base_scorer.meta["training"]["seconds"],  # with synthesis and embedding
              "all_speakers_n0": base_scorer.evaluate(dev, speakers, args.thresholds), "draws": []}
    for draw in range(args.draws):
        order = [speakers[i] for i in np.random.default_rng(1000 + draw).permutation(len(speakers))]
        test = order[max(sizes):]
        runs = {}
        for n in sizes:
            if n == 0:
                runs["0"] = base_scorer.evaluate(dev, test, args.thresholds)
                continue
            enrol = work / f"draw{draw}" / f"enrol{n}"
            shutil.rmtree(enrol, ignore_errors=True)
            enrol.mkdir(parents=True)
            for i in np.flatnonzero((dev.words == word) & np.isin(dev.speakers, order[:n])):
                shutil.copy(dev.paths[i], enrol / dev.paths[i].name)
            out = work / f"draw{draw}" / f"n{n}"
            seconds = train_model([*common, "--init-from", str(base), "--enrol", str(enrol),
                                   "--enrol-copies", str(args.enrol_copies), "--epochs", str(args.epochs),
                                   "--learning-rate", str(args.learning_rate), "--out", str(out)])
            runs[str(n)] = {"enrol_clips": len(list(enrol.iterdir())), "fine_tune_seconds": round(seconds, 1),
                            **Scorer(out, word, dev, stream_parts).evaluate(dev, test, args.thresholds)}
            log.info("%s draw %d N=%d: %s", word, draw, n, runs[str(n)])
        result["draws"].append({"test_speakers": test, "runs": runs})
    result["summary"] = {str(n): summarize([d["runs"][str(n)] for d in result["draws"]]) for n in sizes}
    return result


def summarize(runs: list[dict]) -> dict:
    """Mean and worst over the draws, per threshold."""
    out = {"test_clips": [r["test_clips"] for r in runs], "at": {}}
    for threshold in runs[0]["at"]:
        at = [r["at"][threshold] for r in runs]
        recall = [a["recall"] for a in at]
        out["at"][threshold] = {
            "recall_mean": round(float(np.mean(recall)), 4), "recall_min": min(recall),
            "clip_far_mean": round(float(np.mean([a["clip_false_accept_rate"] for a in at])), 5),
            "fa_per_hour_mean": round(float(np.mean([a["false_accepts_per_hour"] for a in at])), 2),
            "fa_per_hour_max": max(a["false_accepts_per_hour"] for a in at),
            "fa_on_speech_share": round(sum(a["false_accepts_on_speech"] for a in at) /
                                        max(sum(a["false_accepts"] for a in at), 1), 3)}
    if "fine_tune_seconds" in runs[0]:
        out["fine_tune_seconds_mean"] = round(float(np.mean([r["fine_tune_seconds"] for r in runs])), 1)
    return out


def table(results: list[dict]) -> str:
    lines = ["| word | N enrol | threshold | test clips (per draw) | recall mean | recall min | clip FA rate | "
             "FA/h mean | FA/h max | FA on speech | fine-tune s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        everyone = result["all_speakers_n0"]
        for threshold, a in everyone["at"].items():
            lines.append(f"| {result['word']} | 0, all {result['speakers']} speakers | {threshold} | "
                         f"{everyone['test_clips']} | {a['recall']:.3f} | | {a['clip_false_accept_rate']:.4f} | "
                         f"{a['false_accepts_per_hour']:.1f} | | {a['false_accepts_on_speech']}/{a['false_accepts']} | |")
        for n, s in result["summary"].items():
            for threshold, a in s["at"].items():
                lines.append(f"| {result['word']} | {n} | {threshold} | {'/'.join(map(str, s['test_clips']))} | "
                             f"{a['recall_mean']:.3f} | {a['recall_min']:.3f} | {a['clip_far_mean']:.4f} | "
                             f"{a['fa_per_hour_mean']:.1f} | {a['fa_per_hour_max']:.1f} | "
                             f"{a['fa_on_speech_share']:.0%} | {s.get('fine_tune_seconds_mean', '')} |")
    return "\n".join(lines)


def sizes_list(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not sizes or sizes[0] < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: enrolment sizes must be >= 0")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Measure custom-word recall and false accepts on the dev set (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m trainer.custom_word_bench", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="Speech Commands dev folder")
    parser.add_argument("--word", nargs="+", required=True, help="custom word(s) from the folder's _unknown_ words")
    parser.add_argument("--enrol", type=sizes_list, default=[0, 5, 10], metavar="N,N",
                        help="enrolment speakers (default: 0,5,10)")
    parser.add_argument("--draws", type=int, default=3, help="random speaker draws (default: 3)")
    parser.add_argument("--min-test-speakers", type=int, default=3,
                        help="skip an N that leaves fewer test speakers (default: 3)")
    parser.add_argument("--synthetic-speakers", type=int, default=80, help="synthetic corpus speakers (default: 80)")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tune epochs (default: 5)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="fine-tune learning rate (default: 0.001)")
    parser.add_argument("--thresholds", type=lambda t: [float(v) for v in t.split(",")], default=[0.9, 0.975],
                        metavar="T,T", help="thresholds scored besides the model's own (default: 0.9,0.975)")
    parser.add_argument("--enrol-copies", type=int, default=20, help="augmented copies per enrolment clip (default: 20)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/custom_word"), help="models and caches (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="results file (default: WORK/results.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.work.mkdir(parents=True, exist_ok=True)
        features = emb.SpeechEmbedding.from_package()
        dev = load_dev(args.data, features, args.work / "cache")
        for word in args.word:
            word_speakers(dev, word)  # a bad word fails before an hour of work
        stream_parts = dev_stream(args.data, dev, features, args.work)
        results = []
        for word in args.word:
            results.append(measure_word(args, word, dev, stream_parts))
            atomic_write_json(args.json or args.work / "results.json",
                              {"data": str(args.data), "settings": {k: str(v) for k, v in vars(args).items()},
                               "results": results})
    except TinysenseError as exc:
        print(f"python -m trainer.custom_word_bench: error: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
