"""`tinysense cascade`: put a proposer and a confirmer into one two-stage wake-word bundle.

    tinysense cascade --propose models/kws --confirm models/kws-embedding --out models/wakeword

The two exported bundles are copied into `OUT/propose/` and `OUT/confirm/` and `OUT/manifest.json`
names them with their manifests' sha256 and the cascade settings (edge.hearing.cascade). The
folder is built beside OUT and renamed into place, so OUT is either the old cascade or the whole
new one. Needs no TensorFlow: a Pi can assemble one from bundles it was given.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from edge import __version__
from edge.core.argtypes import positive_float
from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import InputError
from edge.core.fileio import atomic_write_json, sha256_file
from edge.hearing.cascade import STAGES, TASK, CascadeParams, load_cascade
from edge.hearing.speech_commands import keywords_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CascadeParams()
    parser.add_argument("--propose", type=Path, required=True, metavar="DIR",
                        help="stage 1: an exported kws bundle (ds-cnn family), always on")
    parser.add_argument("--confirm", type=Path, required=True, metavar="DIR",
                        help="stage 2: an exported kws-embedding bundle, run only on stage 1's candidates")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the cascade bundle folder to write")
    parser.add_argument("--name", default=None, help="bundle name (default: the folder's name)")
    parser.add_argument("--propose-threshold", type=positive_float, default=defaults.propose_threshold,
                        help=f"stage 1's smoothed score that makes a candidate (default: {defaults.propose_threshold})")
    parser.add_argument("--threshold", type=positive_float, default=defaults.threshold,
                        help=f"stage 2's score that confirms a keyword (default: {defaults.threshold})")
    parser.add_argument("--propose-frontend", choices=("stream", "fresh", "manifest"), default=defaults.propose_frontend,
                        help="stage 1's front-end: stream (one continuous front-end, the cheapest), fresh (per-window "
                             f"reset) or manifest (stage 1's own) (default: {defaults.propose_frontend})")
    parser.add_argument("--propose-variant", default=None,
                        help="stage 1's variant, e.g. float32 (XNNPACK, faster than int8 on x86) (default: listen's --variant)")
    parser.add_argument("--propose-stride-ms", type=int, default=defaults.propose_stride_ms,
                        help="stage 1's inference stride in ms, a multiple of 10; 0: stage 1's own "
                             f"(default: {defaults.propose_stride_ms})")
    parser.add_argument("--delay-ms", type=int, default=defaults.delay_ms,
                        help=f"audio after a candidate that stage 2 waits for (default: {defaults.delay_ms})")
    parser.add_argument("--refractory-ms", type=int, default=defaults.refractory_ms,
                        help=f"after an event, nothing fires for this long (default: {defaults.refractory_ms})")


def write_cascade(propose: Path, confirm: Path, out: Path, params: CascadeParams, name: str | None = None) -> dict:
    """Copy both stages into `out` and write its manifest; returns the manifest. BundleError for
    a stage that does not load as its task, InputError for keywords stage 2 does not know."""
    stages = {"propose": Bundle.load(propose, task="kws"), "confirm": Bundle.load(confirm, task="kws-embedding")}
    if params.propose_variant is not None and params.propose_variant not in stages["propose"].variants:
        raise InputError(f"{propose}: has no {params.propose_variant} variant (it has {', '.join(stages['propose'].variants)})")
    missing = sorted(set(keywords_of(stages["propose"].labels)) - set(keywords_of(stages["confirm"].labels)))
    if missing:
        raise InputError(f"{confirm}: does not know {', '.join(missing)}, which {propose} proposes")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for stage in STAGES:
            shutil.copytree(stages[stage].root, building / stage, ignore=shutil.ignore_patterns("bench", "keras", "*.h5"))
        manifest = {
            "format_version": 1, "name": name or out.name, "task": TASK, "labels": stages["confirm"].labels,
            "stages": {stage: {"path": stage, "name": stages[stage].name, "task": stages[stage].task,
                               "manifest_sha256": sha256_file(building / stage / MANIFEST)} for stage in STAGES},
            "cascade": {**vars(params), "thresholds": dict(params.thresholds)},
            "versions": {"tinysense": __version__},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(building / MANIFEST, manifest)
        load_cascade(building)  # what the runtime will check, before it replaces anything
        building.chmod(0o755)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        building.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return manifest


def run(args: argparse.Namespace) -> int:
    try:
        params = CascadeParams(propose_threshold=args.propose_threshold, threshold=args.threshold,
                               propose_frontend=None if args.propose_frontend == "manifest" else args.propose_frontend,
                               propose_variant=args.propose_variant, delay_ms=args.delay_ms,
                               propose_stride_ms=args.propose_stride_ms or None,
                               refractory_ms=args.refractory_ms).checked()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    manifest = write_cascade(args.propose, args.confirm, args.out, params, args.name)
    print(f"wrote {args.out}: {manifest['stages']['propose']['name']} proposes at {params.propose_threshold}, "
          f"{manifest['stages']['confirm']['name']} confirms at {params.threshold}")
    return 0
