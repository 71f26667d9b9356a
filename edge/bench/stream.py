"""Streaming benchmark of a keyword bundle (kws, kws-embedding or a kws-cascade): false accepts
per hour, false rejects, DET curve, CPU, latency and memory of the daemon's code path, side by
side with pymicro-wakeword.

    python -m edge.bench.stream --model models/kws --data ../shared/data/speech_commands_dev \
        [--sentences DIR] [--hours 1] --out bench/stream

Streams are built from a Speech Commands folder: `_background_noise_` recordings cut into
random pieces with random gains for `--hours` of noise; keyword clips placed every 2 s over that
noise; non-keyword speech (the `_unknown_` words, plus any wavs in `--sentences`, e.g. synthetic
sentences) the same way. The spotter runs once per stream with a hook that records every
posterior (a cascade: the stage-2 posteriors of each candidate); the daemon's own decision logic
(`Decider`, or the cascade's `Confirmer` at each stage-2 threshold) then replays them at each
threshold, so the DET curve uses exactly what `tinysense listen` would have done.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from edge.hearing.audio import SAMPLE_RATE, read_audio, speech_bounds
from edge.core.bundle import Bundle
from edge.core.errors import InputError, TinysenseError
from edge.core.fileio import atomic_write_json
from edge.core.memory import memory_mb
from edge.hearing.speech_commands import cv_fold, fold_key, keywords_of, speaker_fold
from edge.hearing.cascade import CascadeParams, CascadeSpotter, Confirmer, load_cascade
from edge.hearing.spotter import Decider
from edge.hearing.spotters import bundle_task, open_spotter

log = logging.getLogger(__name__)

CHUNK = SAMPLE_RATE // 10  #: the daemon's 100 ms chunks
#: --modes: the microfrontend mode each names (fresh_frontend; None = the manifest's).
FRONTEND_MODES = {"fresh": True, "stream": False, "manifest": None}
SPACING = 2.0  #: seconds between utterance starts in speech streams
HIT_WINDOW = 1.5  #: a detection counts for an utterance if it comes within this many s after the clip ends


@dataclasses.dataclass
class Stream:
    name: str
    audio: np.ndarray
    events: list[tuple[str, float, float]]  #: (word, start s, speech end s)

    @property
    def hours(self) -> float:
        return len(self.audio) / SAMPLE_RATE / 3600


# -- streams ----------------------------------------------------------------------------------------
def load_noise(data: Path) -> list[np.ndarray]:
    files = sorted((data / "_background_noise_").glob("*.wav"))
    if not files:
        raise InputError(f"{data}: no _background_noise_/*.wav recordings")
    return [read_audio(f).astype(np.float32) for f in files]


def noise_bed(recordings: list[np.ndarray], seconds: float, rng: np.random.Generator, gain_db=(-20.0, 0.0)) -> np.ndarray:
    """Random 5-20 s pieces of the recordings at random gains, end to end."""
    out, total = [], int(seconds * SAMPLE_RATE)
    while sum(map(len, out)) < total:
        source = recordings[rng.integers(len(recordings))]
        length = min(len(source), int(rng.uniform(5, 20) * SAMPLE_RATE))
        start = rng.integers(0, len(source) - length + 1)
        out.append(source[start:start + length] * 10 ** (rng.uniform(*gain_db) / 20))
    return np.concatenate(out)[:total]


def speech_end(clip: np.ndarray) -> float:
    """Seconds to the last 10 ms frame within 30 dB of the clip's loudest (the end of the word)."""
    return speech_bounds(clip)[1] / SAMPLE_RATE


def speech_stream(name: str, clips: list[tuple[str, np.ndarray]], bed: list[np.ndarray], rng, snr_db=(5.0, 20.0)) -> Stream:
    """Each clip `SPACING` s after the previous one (longer clips get more room), over noise at a random SNR."""
    starts, position = [], 1.0
    for _, clip in clips:
        starts.append(position)
        position += max(SPACING, len(clip) / SAMPLE_RATE + 1.0)
    audio = noise_bed(bed, position + 1.0, rng, gain_db=(0.0, 0.0))
    events = []
    for (word, clip), start in zip(clips, starts):
        i = int(start * SAMPLE_RATE)
        speech = clip.astype(np.float32)
        background = audio[i:i + len(clip)]
        gain = np.sqrt((speech ** 2).mean() / max((background ** 2).mean(), 1e-9)) / 10 ** (rng.uniform(*snr_db) / 20)
        audio[i:i + len(clip)] = speech + background * min(gain, 1.0)
        events.append((word, start, start + speech_end(clip)))
    # Outside the utterances the noise is kept quiet (-30 dB of the recordings' level): a room.
    mask = np.ones(len(audio), bool)
    for (_, clip), start in zip(clips, starts):
        mask[int(start * SAMPLE_RATE):int(start * SAMPLE_RATE) + len(clip)] = False
    audio[mask] *= 10 ** (-30 / 20)
    return Stream(name, np.clip(audio, -32768, 32767).astype(np.int16), events)


def folder_clips(folder: Path, cv: tuple[int, int] | None, limit: int | None) -> list[Path]:
    """A word folder's wavs, sorted; with `cv` = (folds, fold) only those `train kws` holds out."""
    paths = sorted(folder.glob("*.wav"))
    return [p for p in paths if cv is None or speaker_fold(fold_key(p), cv[0]) == cv[1]][:limit]


def build_streams(data: Path, sentences: Path | None, keywords: list[str], hours: float, limit: int | None,
                  seed: int, cv: tuple[int, int] | None = None) -> dict[str, Stream]:
    """Noise, keyword and other-speech streams; with `cv` = (folds, fold) only the clips of the
    speakers that `train kws --cv-folds folds --cv-fold fold` held out."""
    rng = np.random.default_rng(seed)
    bed = load_noise(data)
    streams = {"noise": Stream("noise", np.clip(noise_bed(bed, hours * 3600, rng), -32768, 32767).astype(np.int16), [])}

    keyword_clips = [(w, read_audio(f)) for w in keywords for f in folder_clips(data / w, cv, limit)]
    if not keyword_clips:
        raise InputError(f"{data}: no clips of the keywords {', '.join(keywords)}")
    order = rng.permutation(len(keyword_clips))
    streams["keywords"] = speech_stream("keywords", [keyword_clips[i] for i in order], bed, rng)
    other = [("_unknown_", read_audio(f)) for f in folder_clips(data / "_unknown_", cv, limit)]
    if sentences:
        other += [("_sentence_", read_audio(f)) for f in sorted(sentences.glob("*.wav"))[:limit]]
    if other:
        streams["speech"] = speech_stream("speech", other, bed, rng)
    return streams


# -- measuring --------------------------------------------------------------------------------------
def run_spotter(model: Path, stream: Stream, variant: str | None, fresh_frontend: bool | None) -> dict:
    """Feed the stream in 100 ms chunks as the daemon does; record posteriors (a cascade: its
    candidates' stage-2 posteriors), detections, CPU, RSS. `fresh_frontend` None: the manifest's."""
    trace_times, trace_probs = [], []
    with open_spotter(model, variant=variant, fresh_frontend=fresh_frontend) as spotter:
        if isinstance(spotter, CascadeSpotter):
            spotter.on_candidate = lambda t, _word, _score, p: (trace_times.append(t), trace_probs.append(p))
        else:
            spotter.on_inference = lambda t, p: (trace_times.append(t), trace_probs.append(p))
        detections, chunk_seconds, rss = [], [], {}
        checkpoints = {int(m * 60 * SAMPLE_RATE) for m in (1, 10, 30, 60, 120)}
        cpu = time.process_time()
        for start in range(0, len(stream.audio), CHUNK):
            begin = time.perf_counter()
            detections += spotter.feed(stream.audio[start:start + CHUNK])
            chunk_seconds.append(time.perf_counter() - begin)
            if start + CHUNK in checkpoints or start == 0:
                rss[f"{(start + CHUNK) / SAMPLE_RATE / 60:.1f} min"] = memory_mb()["rss_mb"]
        detections += spotter.finish()  # as the daemon does at the end of its input
        cpu = time.process_time() - cpu
        rss["end"] = memory_mb()["rss_mb"]
        return {"detections": detections, "times": np.array(trace_times), "probs": np.array(trace_probs),
                "cpu_s": cpu, "chunk_ms": np.array(chunk_seconds) * 1000, "rss_mb": rss,
                "labels": spotter.labels, "keywords": spotter.keywords, "detection": spotter.detection,
                "candidates": getattr(spotter, "candidates", None)}


def replay(run: dict, threshold: float) -> list[tuple[str, float, float]]:
    """Detections the daemon would make at `threshold`, from a run's recorded posteriors, through
    its own decision logic: the `Decider` (one model), or the cascade's `Confirmer` over the
    recorded candidates (stage 2's threshold; stage 1's stays the cascade's)."""
    detection, out = run["detection"], []
    if isinstance(detection, CascadeParams):
        confirmer = Confirmer(run["labels"], run["keywords"], dataclasses.replace(detection, threshold=threshold, thresholds={}))
        decide = lambda t, p: confirmer.decide(t, p)  # noqa: E731
    else:
        decider = Decider(run["labels"], None, dataclasses.replace(detection, threshold=threshold, thresholds={}))
        decide = lambda t, p: decider.update(p, int(round(t * 100)))  # noqa: E731
    for t, p in zip(run["times"], run["probs"]):
        fired = decide(t, p)
        if fired:
            out.append((fired[0], fired[1], float(t)))
    return out


def score(stream: Stream, detections: list[tuple[str, float, float]]) -> dict:
    """Hits, misses and false accepts: a detection of the right word between an utterance's start and
    HIT_WINDOW s after its end is a hit; every other detection is a false accept."""
    used, hits, latencies = set(), 0, []
    keyword_events = [(w, s, e) for w, s, e in stream.events if not w.startswith("_")]
    for word, start, end in keyword_events:
        for n, (kw, _, t) in enumerate(detections):
            if n not in used and kw == word and start <= t <= end + HIT_WINDOW:
                used.add(n)
                hits += 1
                latencies.append(t - end)
                break
    false_accepts = len(detections) - len(used)
    return {"utterances": len(keyword_events), "hits": hits, "false_accepts": false_accepts,
            "false_accepts_per_hour": false_accepts / stream.hours,
            "false_reject_rate": 1 - hits / len(keyword_events) if keyword_events else None,
            "latencies": latencies}


def peer_cpu(audio: np.ndarray) -> dict:
    """pymicro-wakeword (okay_nabu) on the same audio: its features + its streaming model."""
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

    wake = MicroWakeWord.from_builtin(Model.OKAY_NABU)
    features = MicroWakeWordFeatures()
    data = audio.astype("<i2").tobytes()
    fired = 0
    cpu = time.process_time()
    for start in range(0, len(data), 2 * CHUNK):
        for frame in features.process_streaming(data[start:start + 2 * CHUNK]):
            fired += bool(wake.process_streaming(frame))
    cpu = time.process_time() - cpu
    wake.close()
    return {"cpu_s": cpu, "detections": fired}


def frontend_cpu(audio: np.ndarray) -> float:
    from edge.hearing.frontend import Frontend

    frontend = Frontend()
    cpu = time.process_time()
    for start in range(0, len(audio), CHUNK):
        frontend.process(audio[start:start + CHUNK])
    return time.process_time() - cpu


def daemon_run(model: Path, audio: np.ndarray) -> dict:
    """`tinysense listen --stdin` on the audio, as deployed: its own summary (CPU, peak RSS)."""
    import subprocess

    daemon = subprocess.Popen([sys.executable, "-m", "edge", "listen", "--model", str(model), "--stdin"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import threading

    collected = {}
    readers = [threading.Thread(target=lambda n=n, f=f: collected.__setitem__(n, f.read()), daemon=True)
               for n, f in (("out", daemon.stdout), ("err", daemon.stderr))]
    for reader in readers:
        reader.start()
    data = audio.astype("<i2").tobytes()
    for start in range(0, len(data), 1 << 20):
        daemon.stdin.write(data[start:start + (1 << 20)])
    daemon.stdin.close()
    daemon.wait()
    for reader in readers:
        reader.join()
    summary = [json.loads(line) for line in collected["err"].decode().splitlines()
               if line.startswith("{") and '"message": "stopped"' in line]
    if daemon.returncode or not summary:
        raise InputError(f"daemon failed: {collected['err'].decode()[-2000:]}")
    return {**{k: summary[0].get(k) for k in ("audio_seconds", "cpu_seconds", "cpu_seconds_per_audio_hour", "rss_mb",
                                               "peak_rss_mb")},
            "detections": len(collected["out"].splitlines())}


def det_plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from edge.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    largest = 1.0
    for mode, points in curves.items():
        fa = [max(p["false_accepts_per_hour"], 0.05) for p in points]
        frr = [100 * p["false_reject_rate"] for p in points]
        largest = max(largest, *fa)
        ax.plot(fa, frr, "o-", markersize=3, label=mode if mode == "manifest" else f"{mode} front-end")
        for p, x, y in zip(points, fa, frr):
            if round(p["threshold"], 3) in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
                ax.annotate(f"{p['threshold']:.2f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.axhline(5.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(0.03, largest * 2)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("false accepts per hour (noise + non-keyword speech; 0 drawn at 0.05)")
    ax.set_ylabel("false rejects (%) of keywords in streams")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path("models/kws"), help="KWS bundle (default: models/kws)")
    parser.add_argument("--variant", default=None, help="variant (default: int8)")
    parser.add_argument("--data", type=Path, required=True, help="Speech Commands folder with _background_noise_")
    parser.add_argument("--sentences", type=Path, default=None, help="folder of non-keyword speech wavs (e.g. synthetic sentences)")
    parser.add_argument("--hours", type=float, default=1.0, help="hours of background noise (default: 1)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips per word folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cv-folds", type=int, default=None, metavar="K",
                        help="use only the speakers of one fold, as `train kws --cv-folds K --cv-fold I` holds out ...")
    parser.add_argument("--cv-fold", type=int, default=None, metavar="I", help="... fold I (default: 0)")
    parser.add_argument("--modes", default=None,
                        help="microfrontend modes to compare (of a kws bundle, or a cascade's stage 1): fresh (per-window "
                             "reset), stream (continuous; what --warm-frontend models are trained on), manifest (the "
                             "bundle's own) (default: fresh,stream for a kws bundle, manifest for the others)")
    parser.add_argument("--cpu-variants", default="int8,float32",
                        help="variants whose CPU on the noise stream is measured (a kws bundle: with the continuous "
                             "front-end) (default: int8,float32; XNNPACK runs float32 faster on some CPUs)")
    parser.add_argument("--out", type=Path, default=Path("bench/stream"), help="folder for results.json and det.png")


def evaluate(streams: dict[str, Stream], runs: dict[str, dict]) -> dict:
    """Scores at the default threshold, latency, and the DET points, for one front-end mode."""
    result = {"detection": dataclasses.asdict(runs["noise"]["detection"]), "streams": {}}
    for name, stream in streams.items():
        scored = score(stream, [(d.keyword, d.score, d.time) for d in runs[name]["detections"]])
        latencies = scored.pop("latencies")
        if latencies:
            scored["latency_s"] = {"median": round(float(np.median(latencies)), 3),
                                   "p90": round(float(np.percentile(latencies, 90)), 3)}
        result["streams"][name] = {**scored, "hours": round(stream.hours, 3)}
    negatives = [n for n in ("noise", "speech") if n in streams]
    negative_hours = sum(streams[n].hours for n in negatives)
    points = []
    for threshold in np.round(np.arange(0.30, 1.0, 0.025), 3):
        scored = {n: score(streams[n], replay(runs[n], threshold)) for n in streams}
        points.append({"threshold": float(threshold),
                       "false_accepts_per_hour": sum(scored[n]["false_accepts"] for n in negatives) / negative_hours,
                       "false_reject_rate": scored["keywords"]["false_reject_rate"]})
    result["det"] = points
    result["target_met_at_thresholds"] = [p["threshold"] for p in points
                                          if p["false_accepts_per_hour"] <= 0.5 and p["false_reject_rate"] <= 0.05]
    noise = streams["noise"]
    chunk_ms = runs["noise"]["chunk_ms"]
    result["cpu_s_per_audio_hour"] = round(runs["noise"]["cpu_s"] / noise.hours, 2)
    result["chunk_processing_ms"] = {q: round(float(np.percentile(chunk_ms, v)), 3) for q, v in (("p50", 50), ("p99", 99))}
    result["rss_mb_in_bench_process"] = runs["noise"]["rss_mb"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.bench.stream", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return measure(args)
    except TinysenseError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


def measure(args) -> int:
    """Build the streams, run every mode and the CPU peers, write results.json and det.png."""
    cv = cv_fold(args.cv_folds, args.cv_fold)
    task = bundle_task(args.model)
    bundle = load_cascade(args.model).propose if task == "kws-cascade" else Bundle.load(args.model, task=task)
    variant = args.variant or bundle.default_variant()
    keywords = keywords_of(bundle.labels)
    modes = (args.modes or ("fresh,stream" if task == "kws" else "manifest")).split(",")
    unknown = sorted(set(modes) - ({"manifest"} if task == "kws-embedding" else set(FRONTEND_MODES)))
    if unknown:
        raise InputError(f"--modes {','.join(unknown)}: not a mode of a {task} bundle")
    streams = build_streams(args.data, args.sentences, keywords, args.hours, args.limit, args.seed, cv)
    noise = streams["noise"]
    results = {"model": str(args.model), "task": task, "data": str(args.data), "keywords": keywords,
               "cv": {"folds": cv[0], "fold": cv[1]} if cv else None,
               "negative_hours": {n: round(streams[n].hours, 3) for n in ("noise", "speech") if n in streams},
               "modes": {}}
    for mode in modes:
        runs = {}
        for name, stream in streams.items():
            log.info("%s, %s front-end, stream %s: %.2f h, %d utterances", task, mode, name, stream.hours, len(stream.events))
            runs[name] = run_spotter(args.model, stream, variant, FRONTEND_MODES[mode])
        results["modes"][mode] = evaluate(streams, runs)
        if runs["noise"]["candidates"] is not None:
            results["modes"][mode]["candidates"] = {n: r["candidates"] for n, r in runs.items()}
    # CPU side by side on the same noise audio, in this one process.
    cpu = results["cpu_s_per_audio_hour"] = {f"tinysense_{mode}": r["cpu_s_per_audio_hour"]
                                             for mode, r in results["modes"].items()}
    cheapest = "stream" if "stream" in modes or task == "kws" else modes[0]
    for other in filter(None, args.cpu_variants.split(",")):
        measured = other == variant and f"tinysense_{cheapest}" in cpu  # that mode's run was this one
        cpu[f"tinysense_{cheapest}_{other}"] = cpu[f"tinysense_{cheapest}"] if measured else round(
            run_spotter(args.model, noise, other, FRONTEND_MODES[cheapest])["cpu_s"] / noise.hours, 2)
    cpu["tinysense_frontend_only"] = round(frontend_cpu(noise.audio) / noise.hours, 2)
    try:
        peer = peer_cpu(noise.audio)
        results["cpu_s_per_audio_hour"]["pymicro_wakeword_okay_nabu"] = round(peer["cpu_s"] / noise.hours, 2)
        results["pymicro_wakeword_detections_on_noise"] = peer["detections"]
    except ImportError as exc:
        log.warning("pymicro-wakeword not installed (%s); no peer comparison", exc)
    results["daemon_stdin"] = {"first_minute": daemon_run(args.model, noise.audio[:60 * SAMPLE_RATE]),
                               "whole_noise_stream": daemon_run(args.model, noise.audio)}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", results)
    det_plot({mode: r["det"] for mode, r in results["modes"].items()}, args.out / "det.png",
             f"{Path(args.model).name} ({task}, {variant}): "
             f"{sum(results['negative_hours'].values()):.2f} h negatives, "
             f"{next(iter(results['modes'].values()))['streams']['keywords']['utterances']} keywords in streams")
    summary = {k: v for k, v in results.items() if k != "modes"}
    summary["modes"] = {m: {k: v for k, v in r.items() if k != "det"} for m, r in results["modes"].items()}
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'det.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
