"""`tinysense bench MODEL_DIR`: accuracy, size, latency and memory of each variant of a bundle.

Each variant is measured in a fresh process (spawned, not forked), so its peak resident memory is
that of a runtime holding only that model, as it would be on a device. Latency is the wall time
of one set-input/invoke/get-output on a single example, warm-up runs excluded.
With `--baseline FILE` (a JSON written earlier by `--json`) the command exits 1 when accuracy drops
or latency grows beyond the tolerances: the regression gate.
"""
from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge.core.argtypes import non_negative_int, positive_int
from edge.bench import suite as bench_suite
from edge.bench.timing import percentiles_ms, time_invocations
from edge.core import plots
from edge.core.bundle import Bundle
from edge.core.errors import InputError, TinysenseError
from edge.core.fileio import atomic_write_json, read_json
from edge.core.memory import memory_mb

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="exported bundle folder")
    parser.add_argument("--data", type=Path, default=None,
                        help="evaluation data: MNIST IDX folder (digits), Speech Commands folder (kws) or a folder of value-prefixed crops (meter); default: the bundle's eval.npz")
    parser.add_argument("--variants", default=None, help="comma-separated variants (default: all in the manifest)")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default: 1)")
    parser.add_argument("--runs", type=positive_int, default=300, help="timed single-example runs per variant (default: 300)")
    parser.add_argument("--warmup", type=non_negative_int, default=30, help="untimed runs first (default: 30)")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate at most this many examples")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plots", type=Path, default=None, metavar="DIR",
                        help="folder for confusion-matrix PNGs (default: MODEL_DIR/bench)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="FILE", help="earlier --json results to compare with")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.5, metavar="PP",
                        help="allowed accuracy drop against the baseline, in percentage points (default: 0.5)")
    parser.add_argument("--max-latency-ratio", type=float, default=1.5, metavar="R",
                        help="allowed p50 latency as a multiple of the baseline's (default: 1.5)")
    bench_suite.add_arguments(parser)


# -- data -------------------------------------------------------------------------------------
def load_eval(bundle: Bundle, data_dir: Path | None, limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(model inputs, label indices, description) for the bundle's task."""
    if data_dir is None:
        x, y = bundle.eval_data()
        source = f"{bundle.root / bundle.manifest['eval']['file']} ({bundle.manifest['eval'].get('source', '')})"
    elif bundle.task == "digits":
        from edge.seeing.mnist import load_split

        x, y = load_split(data_dir, "test")
        x, source = x[..., np.newaxis], f"MNIST test split in {data_dir}"
    elif bundle.task in ("kws", "kws-embedding"):
        from edge.hearing.kws_eval import load_eval_data

        x, y = load_eval_data(bundle, data_dir)
        source = f"Speech Commands layout in {data_dir}"
    elif bundle.task == "meter":
        from edge.seeing.meter import check_preprocessing, load_folder, value_to_class

        check_preprocessing(bundle)
        x, values = load_folder(data_dir)
        y, source = value_to_class(values), f"value-prefixed meter crops in {data_dir}"
    else:
        raise TinysenseError(f"{bundle.root}: no evaluation data loader for task {bundle.task!r}")
    if len(y) == 0:
        raise InputError(f"{data_dir or bundle.root}: no evaluation examples found")
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y, source


# -- measuring one variant (runs in a child process) -------------------------------------------
def measure_variant(bundle_dir: str, variant: str, x: np.ndarray, y: np.ndarray, threads: int,
                    runs: int, warmup: int) -> dict:
    bundle = Bundle.load(bundle_dir)
    model = bundle.open(variant, threads=threads)
    predicted = model.predict(x.astype(np.float32)).argmax(axis=1)
    timings = time_invocations(model, model.to_raw_input(x[:64].astype(np.float32)), runs, warmup)
    latency = percentiles_ms(timings)
    return {
        "accuracy": float((predicted == y).mean()),
        "size_bytes": bundle.variant_path(variant).stat().st_size,
        "latency_ms": latency,
        "inferences_per_s": 1000.0 / latency["mean"],
        "peak_rss_mb": memory_mb()["peak_rss_mb"],
        "backend": model.backend,
        "predicted": predicted.tolist(),
    }


def measure_isolated(*args) -> dict:
    """measure_variant in a freshly spawned interpreter process (clean peak RSS)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_variant, *args).result()


# -- report -----------------------------------------------------------------------------------
def per_class_recall(y: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, float]:
    return {label: float((predicted[y == index] == index).mean()) for index, label in enumerate(labels) if (y == index).any()}


#: more classes than this get no per-class recall table on the terminal (it is in the JSON)
MAX_RECALL_COLUMNS = 20


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['model']} ({report['task']}) on {report['count']} examples, {report['threads']} thread(s)")
    for column in ("variant", "accuracy", "size (bytes)", "p50 ms", "p90 ms", "p99 ms", "inf/s", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, result in report["variants"].items():
        latency = result["latency_ms"]
        table.add_row(name, f"{result['accuracy']:.4f}", f"{result['size_bytes']:,}", f"{latency['p50']:.3f}",
                      f"{latency['p90']:.3f}", f"{latency['p99']:.3f}", f"{result['inferences_per_s']:.0f}",
                      f"{result['peak_rss_mb']:.0f}")
    Console(width=120).print(table)
    labels = list(next(iter(report["variants"].values()), {}).get("per_class_recall", {}))
    if labels and len(labels) > MAX_RECALL_COLUMNS:  # e.g. a meter model's 100 tenths: unreadable as columns
        print(f"per-class recall of {len(labels)} classes: in the --json report")
    elif labels:  # the same evaluation set for every variant, so the same classes
        recall = Table(title="per-class recall")
        for column in ("variant", *labels):
            recall.add_column(column, justify="left" if column == "variant" else "right")
        for name, result in report["variants"].items():
            recall.add_row(name, *(f"{result['per_class_recall'].get(label, float('nan')):.2f}" for label in labels))
        Console(width=160).print(recall)


def compare_with_baseline(report: dict, baseline: dict, max_drop_pp: float, max_ratio: float) -> list[str]:
    """Human-readable regressions; empty when everything is within tolerance.

    A baseline of another model or task, or one sharing no variant with the report, is itself a
    problem: a gate that compared nothing must not pass.
    """
    for key in ("task", "model"):
        if key in baseline and baseline[key] != report[key]:
            return [f"the baseline is for {key} {baseline[key]!r}, not {report[key]!r}: nothing compared"]
    common = [name for name in baseline.get("variants", {}) if name in report["variants"]]
    if not common:
        return [f"the baseline has no variant in common with this run (baseline: "
                f"{', '.join(baseline.get('variants', {})) or 'none'}; run: {', '.join(report['variants'])}): nothing compared"]
    problems = []
    for name in common:
        old, new = baseline["variants"][name], report["variants"][name]
        drop = (old["accuracy"] - new["accuracy"]) * 100
        if drop > max_drop_pp:
            problems.append(f"{name}: accuracy {new['accuracy']:.4f} is {drop:.2f} pp below the baseline's {old['accuracy']:.4f}")
        ratio = new["latency_ms"]["p50"] / max(old["latency_ms"]["p50"], 1e-9)
        if ratio > max_ratio:
            problems.append(f"{name}: p50 latency {new['latency_ms']['p50']:.3f} ms is {ratio:.2f}x the baseline's {old['latency_ms']['p50']:.3f} ms")
    return problems


def run(args) -> int:
    bundle = Bundle.load(args.model_dir)
    variants = args.variants.split(",") if args.variants else bundle.variants
    for name in variants:
        bundle.variant(name)
    baseline = None
    if args.baseline is not None:
        baseline = read_json(args.baseline, TinysenseError)
    x, y, source = load_eval(bundle, args.data, args.limit)
    log.info("benchmarking %s on %d examples from %s", bundle.root, len(y), source)
    report = {"model": bundle.name, "task": bundle.task, "bundle": str(bundle.root), "data": source,
              "count": int(len(y)), "threads": args.threads, "runs": args.runs, "variants": {}}
    plots_dir = args.plots or bundle.root / "bench"
    for name in variants:
        result = measure_isolated(str(bundle.root), name, x, y, args.threads, args.runs, args.warmup)
        predicted = np.asarray(result.pop("predicted"))
        result["per_class_recall"] = per_class_recall(y, predicted, bundle.labels)
        if plots.available():
            counts = plots.confusion_counts(y, predicted, len(bundle.labels))
            result["confusion_png"] = str(plots.confusion_matrix(
                counts, bundle.labels, plots_dir / f"confusion_{name}.png",
                title=f"{bundle.name} {name}: accuracy {result['accuracy']:.4f} ({len(y)} examples)"))
        report["variants"][name] = result
    print_table(report)
    if bench_suite.enabled(args):
        bench_suite.extend(report, bundle, x, y, args)
    if args.json:
        atomic_write_json(args.json, report)
    if baseline is not None:
        problems = compare_with_baseline(report, baseline, args.max_accuracy_drop, args.max_latency_ratio)
        for problem in problems:
            print(f"REGRESSION {problem}")
        if problems:
            return 1
        print(f"no regression against {args.baseline}")
    return 0
