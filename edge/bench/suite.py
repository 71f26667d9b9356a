"""The benchmark suite on top of `tinysense bench`: how a bundle runs on this machine, and why.

Adds to the bench report (all measured here, nothing estimated):
- backends: LiteRT with XNNPACK, LiteRT's builtin kernels, tflite-runtime, TensorFlow Lite Micro
  and the Edge TPU, each with its latency and top-1 accuracy, or the reason it is unavailable;
- a thread sweep (LiteRT + XNNPACK, 1..N threads);
- a per-operator profile: LiteRT's Python API reports no op timings, so the model is cut after
  each operator (edge.core.flatbuffer.truncated_model) and the prefixes are timed; the differences are
  the operators' costs with the builtin kernels;
- multiply-accumulates per inference (from the flatbuffer) against a measured matmul throughput
  of this machine, so the report says how close to the hardware each model runs;
- for keyword spotting: the streaming real-time factor of the whole pipeline (front-end +
  classifier + smoothing) and, side by side, the peer pymicro-wakeword with a shipped model;
- the machine (CPU, cores, OS, Python and library versions), a Markdown report and a PNG chart.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from edge.bench.timing import percentiles_ms, time_invocations
from edge.core import plots
from edge.core.bundle import Bundle
from edge.core.errors import TinysenseError
from edge.core.fileio import atomic_write_text
from edge.core.flatbuffer import count_macs, read_graph, truncated_model

log = logging.getLogger(__name__)

BACKENDS = ("litert-xnnpack", "litert-builtin", "tflite-runtime", "tflm", "edgetpu")
LIBRARIES = ("tinysense", "numpy", "ai-edge-litert", "tflite-micro", "tflite-runtime", "pymicro-features", "pymicro-wakeword")
PEER_MODEL = "okay_nabu"
STREAM_SECONDS = 10.0
STREAM_CHUNK_SAMPLES = 320  # 20 ms, what a microphone callback typically delivers


class Unavailable(Exception):
    """A backend or peer that cannot run on this machine; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("benchmark suite")
    group.add_argument("--suite", action="store_true",
                       help="everything below: all backends, thread sweep over all cores, op profile, streaming and peer")
    group.add_argument("--backends", default=None, help=f"comma-separated backends for the int8 variant, or 'all' ({', '.join(BACKENDS)})")
    group.add_argument("--thread-sweep", type=int, default=0, metavar="N", help="also time LiteRT with 1..N threads")
    group.add_argument("--profile-ops", action="store_true", help="per-operator time of the int8 variant (builtin kernels)")
    group.add_argument("--streaming", action="store_true", help="kws: streaming real-time factor, and the peer pymicro-wakeword")
    group.add_argument("--markdown", type=Path, default=None, metavar="FILE", help="write the report as Markdown")
    group.add_argument("--chart", type=Path, default=None, metavar="FILE", help="write a PNG latency chart")


def enabled(args: argparse.Namespace) -> bool:
    return bool(args.suite or args.backends or args.thread_sweep or args.profile_ops or args.streaming
                or args.markdown or args.chart)


# -- machine ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    versions = {}
    for package in LIBRARIES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions}


def matmul_macs_per_s(size: int = 384, seconds: float = 1.0) -> dict:
    """Float32 matrix-multiply throughput of one core (numpy/BLAS) from the fastest of many
    single products, so preemption on a busy machine does not hide what the core can do."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    try:
        from threadpoolctl import threadpool_limits

        one_thread, threads = threadpool_limits(limits=1), 1
    except ImportError:
        one_thread, threads = contextlib.nullcontext(), "BLAS default"
    fastest, deadline = float("inf"), time.perf_counter() + seconds
    with one_thread:
        a @ a  # warm-up
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ a
            fastest = min(fastest, time.perf_counter() - start)
    return {"macs_per_s": size**3 / fastest, "matrix": size, "threads": threads}


# -- backends ---------------------------------------------------------------------------------
def open_backend(bundle: Bundle, variant: str, backend: str, threads: int = 1):
    """A model with `invoke_raw` running `variant` on `backend`; Unavailable says why not.

    LiteRT is always installed, so its failures are errors; the other backends are optional."""
    openers = {
        "litert-xnnpack": lambda: bundle.open(variant, threads=threads),
        "litert-builtin": lambda: bundle.open(variant, threads=threads, use_xnnpack=False),
        "edgetpu": lambda: bundle.open(variant, device="edgetpu"),
        "tflite-runtime": lambda: bundle.open(variant, threads=threads, backends=("tflite_runtime.interpreter",)),
        "tflm": lambda: open_micro(bundle, variant),
    }
    if backend not in openers:
        raise TinysenseError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    try:
        return openers[backend]()
    except TinysenseError as exc:
        if backend.startswith("litert-"):
            raise
        raise Unavailable(str(exc)) from None


def open_micro(bundle: Bundle, variant: str):
    """TFLite Micro's interpreter with the arena the exporter measured for this model."""
    from edge.core.micro import MicroModel

    arena = bundle.manifest.get("tflm", {}).get("arena_bytes")
    if not arena:
        raise Unavailable("the manifest records no TFLM arena (export with tflite-micro installed)")
    return MicroModel(bundle.verify_variant(variant).read_bytes(), arena)


def time_raw(model, raw: np.ndarray, runs: int, warmup: int) -> dict:

    latency = percentiles_ms(time_invocations(model, raw, runs, warmup))
    return {"latency_ms": latency, "inferences_per_s": 1000.0 / latency["mean"]}


def measure_backends(bundle: Bundle, variant: str, raw: np.ndarray, y: np.ndarray, backends: list[str],
                     runs: int, warmup: int) -> dict:
    results = {}
    for backend in backends:
        try:
            model = open_backend(bundle, variant, backend)
        except Unavailable as exc:
            results[backend] = {"available": False, "reason": str(exc)}
            continue
        outputs = np.stack([model.invoke_raw(example[np.newaxis]).reshape(-1) for example in raw])
        results[backend] = {"available": True, "accuracy": float((outputs.argmax(axis=1) == y[: len(raw)]).mean()),
                            "examples": len(raw), "raw_outputs": outputs, **time_raw(model, raw, runs, warmup)}
    reference = results.get("tflm", {}).get("raw_outputs")
    for result in results.values():
        outputs = result.pop("raw_outputs", None)
        if reference is not None and outputs is not None:
            diff = np.abs(outputs.astype(np.int32) - reference.astype(np.int32))
            result["vs_tflm"] = {"top1_agreement": float((outputs.argmax(axis=1) == reference.argmax(axis=1)).mean()),
                                 "max_lsb": int(diff.max()), "mean_lsb": float(diff.mean())}
    return results


def thread_sweep(bundle: Bundle, variants: list[str], x: np.ndarray, max_threads: int, runs: int, warmup: int) -> dict:
    sweep = {}
    for variant in variants:
        sweep[variant] = {}
        for threads in range(1, max_threads + 1):
            model = bundle.open(variant, threads=threads)
            raw = model.to_raw_input(x[:64].astype(np.float32))
            sweep[variant][str(threads)] = time_raw(model, raw, runs, warmup)["latency_ms"]["p50"]
    return sweep


def profile_ops(model_bytes: bytes, raw: np.ndarray, runs: int) -> list[dict]:
    """Per-operator time (ms) with LiteRT's builtin kernels, from timing every model prefix."""
    from edge.core.interpreter import TFLiteModel

    graph = read_graph(model_bytes)
    prefix_ms = [0.0]
    for count in range(1, len(graph.operators) + 1):
        model = TFLiteModel(f"<first {count} ops>", model_bytes=truncated_model(model_bytes, count), use_xnnpack=False)
        prefix_ms.append(time_raw(model, raw, runs, warmup=max(5, runs // 10))["latency_ms"]["p50"])
    ops = [{"index": op.index, "op": op.name, "ms": max(prefix_ms[op.index + 1] - prefix_ms[op.index], 0.0),
            "output_shape": list(op.outputs[0].shape) if op.outputs else []} for op in graph.operators]
    total = sum(op["ms"] for op in ops) or 1.0
    for op in ops:
        op["share"] = op["ms"] / total
    return sorted(ops, key=lambda op: op["ms"], reverse=True)


# -- keyword spotting: streaming and the peer -------------------------------------------------
def stream_audio(seconds: float = STREAM_SECONDS) -> np.ndarray:
    """Seeded low-level noise with a tone burst every second: content barely changes the cost."""
    rng = np.random.default_rng(0)
    samples = int(16000 * seconds)
    audio = rng.normal(0, 300, samples)
    t = np.arange(samples) / 16000
    audio += 3000 * np.sin(2 * np.pi * 440 * t) * ((t % 1.0) < 0.3)
    return np.clip(audio, -32768, 32767).astype(np.int16)


def streaming_rtf(bundle: Bundle, variant: str, audio: np.ndarray) -> dict:
    """CPU seconds per second of audio for the whole spotter (front-end, model, smoothing)."""
    from edge.hearing.spotter import KeywordSpotter

    with KeywordSpotter.from_bundle(bundle.root, variant=variant) as spotter:
        start = time.process_time()
        for i in range(0, len(audio), STREAM_CHUNK_SAMPLES):
            spotter.feed(audio[i : i + STREAM_CHUNK_SAMPLES])
        cpu = time.process_time() - start
        stride_ms = spotter.detection.stride_ms
    seconds = len(audio) / 16000
    return {"audio_s": seconds, "cpu_s": cpu, "rtf": cpu / seconds, "stride_ms": stride_ms,
            "inferences_per_audio_s": 1000 / stride_ms}


def peer(audio: np.ndarray, runs: int, warmup: int) -> dict:
    """pymicro-wakeword with its shipped okay_nabu model on the same audio: RTF, latency, size, MACs."""
    try:
        import pymicro_wakeword
    except ImportError:
        raise Unavailable("pymicro-wakeword is not installed (pip install 'tinysense[dev]')") from None
    from edge.core.interpreter import TFLiteModel
    from edge.bench.stream import peer_cpu

    cpu = peer_cpu(audio)["cpu_s"]
    model_path = Path(pymicro_wakeword.__file__).parent / "models" / f"{PEER_MODEL}.tflite"
    model_bytes = model_path.read_bytes()
    config = json.loads(model_path.with_suffix(".json").read_text())
    litert = TFLiteModel(model_path, model_bytes=model_bytes)
    raw = np.zeros((1, *litert.input_shape[1:]), litert.input_dtype)
    seconds = len(audio) / 16000
    return {"model": f"pymicro-wakeword {PEER_MODEL}", "size_bytes": len(model_bytes), "rtf": cpu / seconds,
            "cpu_s": cpu, "audio_s": seconds, "inferences_per_audio_s": 100 / litert.input_shape[1],
            "macs_per_inference": count_macs(read_graph(model_bytes)),
            "tflm_arena_bytes_declared": config.get("micro", {}).get("tensor_arena_size"), **time_raw(litert, raw, runs, warmup)}


# -- the suite --------------------------------------------------------------------------------
def extend(report: dict, bundle: Bundle, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> None:
    """Add the suite's sections to `report` (in place), print them, write Markdown and chart."""
    report["machine"] = machine_info()
    report["tflm_arena_bytes"] = bundle.manifest.get("tflm", {}).get("arena_bytes")
    probe = matmul_macs_per_s()
    report["matmul_probe"] = probe
    runs, warmup = args.runs, args.warmup
    for name, result in report["variants"].items():
        macs = count_macs(read_graph(bundle.verify_variant(name).read_bytes()))
        achieved = macs / (result["latency_ms"]["p50"] / 1000)
        result["macs_per_inference"] = macs
        result["macs_per_s"] = achieved
        result["fraction_of_matmul_peak"] = achieved / probe["macs_per_s"]
    int8 = "int8" if "int8" in report["variants"] else None
    backends = list(BACKENDS) if args.suite or args.backends == "all" else [b for b in (args.backends or "").split(",") if b]
    profile = (args.suite or args.profile_ops) and int8
    model = bundle.open(int8) if int8 and (backends or profile) else None
    if backends and int8:
        raw = model.to_raw_input(x[: min(len(x), 500)].astype(np.float32))
        report["backends"] = {"variant": int8, **measure_backends(bundle, int8, raw, y, backends, runs, warmup)}
    sweep = args.thread_sweep or (report["machine"]["usable_cores"] if args.suite else 0)
    if sweep:
        report["thread_sweep_p50_ms"] = thread_sweep(bundle, [v for v in ("int8", "float32") if v in report["variants"]],
                                                     x, sweep, runs, warmup)
    if profile:
        report["op_profile"] = {"variant": int8, "backend": "litert-builtin",
                                "ops": profile_ops(model.model_bytes, model.to_raw_input(x[:16].astype(np.float32)), max(50, runs // 3))}
    if (args.suite or args.streaming) and bundle.task == "kws":
        audio = stream_audio()
        report["streaming"] = {name: streaming_rtf(bundle, name, audio) for name in report["variants"]}
        try:
            report["peer"] = peer(audio, runs, warmup)
        except Unavailable as exc:
            report["peer"] = {"available": False, "reason": str(exc)}
        if int8 and "rtf" in report["peer"]:
            ours = report["streaming"][int8]
            report["peer"]["ratio"] = {
                "rtf_ours_over_peer": ours["rtf"] / report["peer"]["rtf"],
                "p50_ours_over_peer": report["variants"][int8]["latency_ms"]["p50"] / report["peer"]["latency_ms"]["p50"],
                "size_ours_over_peer": report["variants"][int8]["size_bytes"] / report["peer"]["size_bytes"],
                "macs_per_audio_s_ours_over_peer": (report["variants"][int8]["macs_per_inference"] * ours["inferences_per_audio_s"])
                / (report["peer"]["macs_per_inference"] * report["peer"]["inferences_per_audio_s"]),
            }
    text = markdown(report)
    print(text)
    if args.markdown:
        atomic_write_text(args.markdown, text)
    if args.chart and plots.available():
        report["chart_png"] = str(chart(report, args.chart))


# -- output -----------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [f"# Benchmark: {report['model']} ({report['task']})", "",
             f"{machine['cpu']}, {machine['usable_cores']} usable of {machine['cores']} cores, {machine['os']}, "
             f"Python {machine['python']}; " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()), "",
             f"{report['count']} examples from {report['data']}; {report['runs']} timed single-example runs, "
             f"{report['threads']} thread(s). Matmul probe (float32, 1 core, fastest product): {report['matmul_probe']['macs_per_s'] / 1e9:.2f} GMAC/s; "
             "GMAC/s below = MACs per inference / p50 latency.", "",
             "## Variants (LiteRT)", ""]
    rows = []
    for name, r in report["variants"].items():
        lat = r["latency_ms"]
        rows.append([name, f"{100 * r['accuracy']:.2f}%", f"{r['size_bytes']:,}", f"{lat['p50']:.3f}", f"{lat['p90']:.3f}",
                     f"{lat['p99']:.3f}", f"{r['inferences_per_s']:.0f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['macs_per_inference']:,}", f"{r['macs_per_s'] / 1e9:.2f}", f"{100 * r['fraction_of_matmul_peak']:.1f}%"])
    lines += _table(["variant", "accuracy", "size (bytes)", "p50 ms", "p90 ms", "p99 ms", "inf/s", "peak RSS MB",
                     "MACs/inference", "GMAC/s", "of matmul peak"], rows)
    if "backends" in report:
        backends = {k: v for k, v in report["backends"].items() if k != "variant"}
        lines += ["", f"## Backends ({report['backends']['variant']} variant)", ""]
        rows = []
        for name, r in backends.items():
            if not r["available"]:
                rows.append([name, "unavailable: " + r["reason"][:90], "", "", "", ""])
                continue
            parity = r.get("vs_tflm", {})
            rows.append([name, f"{100 * r['accuracy']:.2f}% of {r['examples']}", f"{r['latency_ms']['p50']:.3f}",
                         f"{r['latency_ms']['p99']:.3f}", f"{r['inferences_per_s']:.0f}",
                         f"{100 * parity['top1_agreement']:.2f}% / {parity['max_lsb']} / {parity['mean_lsb']:.4f}" if parity else "-"])
        lines += _table(["backend", "accuracy", "p50 ms", "p99 ms", "inf/s", "vs TFLM: top-1 / max LSB / mean LSB"], rows)
    if "thread_sweep_p50_ms" in report:
        sweep = report["thread_sweep_p50_ms"]
        threads = sorted({int(t) for values in sweep.values() for t in values})
        lines += ["", "## Threads (LiteRT + XNNPACK, p50 ms)", ""]
        lines += _table(["variant", *[f"{t} thread(s)" for t in threads]],
                        [[name, *[f"{values[str(t)]:.3f}" for t in threads]] for name, values in sweep.items()])
    if "op_profile" in report:
        ops = report["op_profile"]["ops"]
        lines += ["", f"## Top operators ({report['op_profile']['variant']}, LiteRT builtin kernels, prefix timing)", ""]
        lines += _table(["#", "op", "output shape", "ms", "share"],
                        [[op["index"], op["op"], "x".join(map(str, op["output_shape"])), f"{op['ms']:.4f}", f"{100 * op['share']:.1f}%"]
                         for op in ops[:8]])
    if "streaming" in report:
        lines += ["", f"## Streaming ({STREAM_SECONDS:.0f} s of audio in {STREAM_CHUNK_SAMPLES}-sample chunks)", ""]
        rows = [[name, f"{s['stride_ms']} ms", f"{s['cpu_s'] * 1000:.1f}", f"{s['rtf']:.4f}"] for name, s in report["streaming"].items()]
        p = report.get("peer", {})
        if "rtf" in p:
            rows.append([p["model"], f"{1000 / p['inferences_per_audio_s']:.0f} ms", f"{p['cpu_s'] * 1000:.1f}", f"{p['rtf']:.4f}"])
        lines += _table(["pipeline", "inference every", "CPU ms", "real-time factor (CPU s per audio s)"], rows)
        if "ratio" in p:
            ratio = p["ratio"]
            ours_arena = report.get("tflm_arena_bytes")
            lines += ["", f"Peer {p['model']}: {p['size_bytes']:,} bytes, {p['macs_per_inference']:,} MACs per inference, "
                      f"p50 {p['latency_ms']['p50']:.3f} ms, TFLM arena {p['tflm_arena_bytes_declared']} bytes (its manifest; ours measured: "
                      f"{ours_arena}). Ours/peer: real-time factor {ratio['rtf_ours_over_peer']:.2f}x, "
                      f"p50 per inference {ratio['p50_ours_over_peer']:.2f}x, size {ratio['size_ours_over_peer']:.2f}x, "
                      f"MACs per second of audio {ratio['macs_per_audio_s_ours_over_peer']:.2f}x."]
        elif p and not p.get("available", True):
            lines += ["", f"Peer unavailable: {p['reason']}"]
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> Path:
    """p50 latency per variant and backend, and the thread sweep, side by side."""
    from edge.core.plots import pyplot

    plt = pyplot()

    bars = {f"{name}": r["latency_ms"]["p50"] for name, r in report["variants"].items()}
    for name, r in report.get("backends", {}).items():
        if isinstance(r, dict) and r.get("available"):
            bars[f"int8 {name}"] = r["latency_ms"]["p50"]
    if "peer" in report and "latency_ms" in report["peer"]:
        bars[f"peer {PEER_MODEL}"] = report["peer"]["latency_ms"]["p50"]
    sweep = report.get("thread_sweep_p50_ms")
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4), squeeze=False)
    ax = axes[0][0]
    ax.barh(list(bars), list(bars.values()), color="tab:blue")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per inference (ms, log scale)")
    ax.set_title(f"{report['model']}: latency on {report['machine']['cpu']}")
    if sweep:
        ax = axes[0][1]
        for name, values in sweep.items():
            ax.plot([int(t) for t in values], list(values.values()), marker="o", label=name)
        ax.set_xlabel("threads")
        ax.set_ylabel("p50 ms")
        ax.set_title("LiteRT + XNNPACK thread sweep")
        ax.legend()
    return plots.save_figure(fig, path)
