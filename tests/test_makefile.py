"""The Makefile's `make demo`, run against a stand-in `tinysense` that only writes the files each
step promises: every model gets built once, the camera models beside the hearing ones, the
benchmarks after both, and a failing camera model fails the demo with its log shown."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Writes what each command's Makefile rule expects and logs the command line.
FAKE_TINYSENSE = r"""#!/bin/sh
echo "$*" >> "$CALLS"
[ "$1" = -q ] && shift
case "$1" in
  train)
    out=$(echo "$*" | sed 's/.*--out \([^ ]*\).*/\1/')
    name=$(basename "$out")
    case " $FAIL " in *" $name "*) echo "training $name broke" >&2; exit 3;; esac
    echo "start $name" >> "$CALLS.order"
    [ "$name" = kws ] && sleep "${KWS_SECONDS:-0}"
    mkdir -p "$out" && echo "{}" > "$out/train_meta.json"
    echo "end $name" >> "$CALLS.order";;
  export) echo "{}" > "$2/manifest.json";;
  firmware) mkdir -p "$4" && echo "{}" > "$4/firmware.json";;
  cascade) mkdir -p models/wakeword && echo "{}" > models/wakeword/manifest.json;;
  bench) echo "bench $2";;
esac
"""


@pytest.fixture()
def project(tmp_path):
    if shutil.which("make") is None:
        pytest.fail("make is not installed (apt install make)")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    fake = tmp_path / "fake-tinysense"
    fake.write_text(FAKE_TINYSENSE)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def run_make(project: Path, *args: str, fail: str = "", kws_seconds: float = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "CALLS": str(project / "calls.txt"), "FAIL": fail, "KWS_SECONDS": str(kws_seconds)}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", *args, f"TINYSENSE={project / 'fake-tinysense'}"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)


def run_demo(project: Path, fail: str = "") -> subprocess.CompletedProcess:
    return run_make(project, "demo", fail=fail)


def test_demo_builds_every_model_once_then_benchmarks(project):
    done = run_demo(project)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (project / "calls.txt").read_text().splitlines()
    trained = sorted(c.split("--out ")[1].split()[0] for c in calls if c.startswith("train "))
    models = ("digits", "digits-mixed", "meter", "meter-lcd", "kws", "kws-embedding")
    assert trained == sorted(f"models/{m}" for m in models)
    assert sorted(c for c in calls if c.startswith("export ")) == sorted(f"export models/{m}" for m in models)
    assert "train meter --display wheels --out models/meter" in calls
    assert "train meter --display lcd --out models/meter-lcd" in calls
    assert len([c for c in calls if c.startswith("cascade ")]) == 1
    benches = [n for n, c in enumerate(calls) if c.startswith("-q bench ")]
    assert len(benches) == 6 and min(benches) > max(n for n, c in enumerate(calls) if not c.startswith("-q bench "))
    assert "train digits --out models/digits" in (project / "models" / "demo-seeing.log").read_text()


def test_a_failing_camera_model_fails_the_demo_and_shows_its_log(project):
    done = run_demo(project, fail="meter")
    assert done.returncode != 0
    assert "training meter broke" in done.stdout + done.stderr
    assert "building the seeing models failed (models/demo-seeing.log)" in done.stderr
    calls = (project / "calls.txt").read_text()
    assert "train kws --arch embedding" in calls, "the hearing models are still built"
    assert "bench" not in calls


def test_a_failing_hearing_model_fails_the_demo_after_the_camera_models(project):
    done = run_demo(project, fail="kws")
    assert done.returncode != 0
    assert "training kws broke" in done.stderr
    calls = (project / "calls.txt").read_text()
    assert "train meter" in calls and "firmware models/meter" in calls, "the camera models are still built"
    assert "bench" not in calls


def test_parallel_make_trains_the_embedding_head_after_the_keyword_model(project):
    """Both read the synthetic corpus that the first one to run builds: `make -j2` must not start
    the second before the first has finished, or the corpus is synthesized twice at once."""
    done = run_make(project, "-j2", "models/kws-embedding/train_meta.json", "models/kws/train_meta.json",
                    kws_seconds=1)
    assert done.returncode == 0, done.stdout + done.stderr
    order = (project / "calls.txt.order").read_text().split("\n")
    assert order.index("end kws") < order.index("start kws-embedding"), order


def test_the_cascade_is_made_again_when_its_arguments_change(project):
    assert run_make(project, "models/wakeword/manifest.json").returncode == 0
    changed = run_make(project, "models/wakeword/manifest.json", "CASCADE_ARGS=--threshold 0.6")
    same = run_make(project, "models/wakeword/manifest.json", "CASCADE_ARGS=--threshold 0.6")
    assert changed.returncode == same.returncode == 0, changed.stderr + same.stderr
    cascades = [c for c in (project / "calls.txt").read_text().splitlines() if c.startswith("cascade ")]
    assert len(cascades) == 2 and cascades[1].endswith("--threshold 0.6")
    assert (project / "models" / "wakeword.cascade-args").read_text() == "--threshold 0.6\n"
