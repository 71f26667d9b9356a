"""End to end: `tinysense listen` as a subprocess reading a fake ALSA microphone through PortAudio.

The microphone is ALSA's `file` plugin playing a raw PCM file (DESIGN.md). It is not paced in
real time, so the audio clock is the sample count: keywords placed at known seconds must be
reported at those seconds. The --on-detect hook and the event socket see the same events.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.stream.speech import keyword_stream, noise

HOOK = "import os, sys; open(sys.argv[1], 'a').write(os.environ['TINYSENSE_KEYWORD'] + ' ' + os.environ['TINYSENSE_TIME'] + '\\n')"


def fake_microphone(home: Path, audio: np.ndarray) -> Path:
    """A HOME whose .asoundrc makes the default capture device play `audio`."""
    home.mkdir(parents=True, exist_ok=True)
    raw = home / "mic.raw"
    raw.write_bytes(audio.astype("<i2").tobytes())
    (home / ".asoundrc").write_text(
        'pcm.!default { type plug; slave.pcm "fakemic" }\n'
        f'pcm.fakemic {{ type file; slave.pcm "null"; file "/dev/null"; infile "{raw}"; format "raw" }}\n')
    return home


def start_daemon(home: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "edge", "listen", *args], env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(daemon: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    out, err = daemon.communicate(timeout=timeout)
    return out.decode(), err.decode()


def subscribe(path: Path, daemon: subprocess.Popen, timeout: float = 60.0) -> socket.socket:
    """Connect as soon as the socket exists; the daemon accepts before its next event."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert daemon.poll() is None, finish(daemon)[1]
        assert time.monotonic() < deadline, "event socket never appeared"
        time.sleep(0.005)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(path))
    client.settimeout(60)
    return client


def logs(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_daemon_spots_keywords_at_their_times_from_a_fake_microphone(daemon_bundle, tmp_path):
    stream = keyword_stream(daemon_bundle)
    home = fake_microphone(tmp_path / "home", stream.audio)
    hook_log, sock = tmp_path / "hook.log", tmp_path / "events.sock"
    daemon = start_daemon(home, "--model", str(daemon_bundle), "--device", "fakemic", "--max-seconds",
                          str(stream.seconds), "--socket", str(sock), "--threshold", "0.5",
                          "--on-detect", sys.executable, "-c", HOOK, str(hook_log))
    client = subscribe(sock, daemon)
    out, err = finish(daemon)
    assert daemon.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    received = client.makefile().read()  # the daemon closes the socket when it stops
    client.close()
    assert [(e["keyword"], e["time"]) for e in events] == [
        (e["keyword"], e["time"]) for e in map(json.loads, received.splitlines())]
    # Each keyword once, in order, between its start and 1 s after its clip ends; nothing else.
    assert [e["keyword"] for e in events] == [word for word, _ in stream.words], (events, err)
    for event, (word, start) in zip(events, stream.words):
        assert start + 0.5 <= event["time"] <= start + 1.6, (event, start)  # clip [start, start + 1]
        assert event["wall_time"].endswith("+00:00") and 0 < event["score"] <= 1
    hooked = [line.split() for line in hook_log.read_text().splitlines()]
    assert sorted(w for w, _ in hooked) == sorted(e["keyword"] for e in events)
    summary = [r for r in logs(err) if r["message"] == "stopped"][0]
    assert summary["audio_seconds"] == pytest.approx(stream.seconds, abs=0.01)
    opened = [r for r in logs(err) if r["message"].startswith("opened microphone")][0]
    assert "16000 Hz" in opened["message"]
    assert not sock.exists()


def test_nothing_fires_on_noise_and_signals_reload_and_stop(daemon_bundle, tmp_path):
    home = fake_microphone(tmp_path / "home", noise(30.0, seed=3))
    config = tmp_path / "listen.toml"
    config.write_text(f'model = "{daemon_bundle}"\ndevice = "fakemic"\nthreshold = 0.4\n')
    daemon = start_daemon(home, "--config", str(config), "--max-seconds", "30")
    out, err = finish(daemon)
    assert daemon.returncode == 0, err
    assert out == ""  # 30 s of noise: no detection
    assert [r for r in logs(err) if r["message"] == "stopped"][0]["audio_seconds"] == 30.0

    # Raw PCM on stdin, kept open: SIGHUP reloads the edited config, SIGTERM stops cleanly.
    daemon = start_daemon(home, "--config", str(config), "--stdin", stdin=subprocess.PIPE)
    daemon.stdin.write(noise(3.0, seed=4).astype("<i2").tobytes())
    daemon.stdin.flush()
    time.sleep(0.5)
    config.write_text(f'model = "{daemon_bundle}"\nthreshold = 0.7\n')
    wait_for_log(daemon, "listening")
    daemon.send_signal(signal.SIGHUP)
    daemon.stdin.write(noise(1.0, seed=5).astype("<i2").tobytes())
    daemon.stdin.flush()
    wait_for_log(daemon, "reloaded config and model")
    daemon.send_signal(signal.SIGTERM)
    out, err = finish(daemon, 60)
    assert daemon.returncode == 0, err
    assert out == "" and "received SIGTERM" in err and '"message": "stopped"' in err


def wait_for_log(daemon: subprocess.Popen, message: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = daemon.stderr.readline().decode()
        if not line:
            break
        if line.startswith("{") and json.loads(line)["message"] == message:
            return
    raise AssertionError(f"daemon never logged {message!r}")
