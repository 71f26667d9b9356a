"""The Wyoming wake-word server speaks the protocol Home Assistant uses (fake classifier, no model)."""
from __future__ import annotations

import contextlib
import socket
import threading

import numpy as np

from edge.hearing.spotter import DetectionParams, KeywordSpotter
from edge.hearing.wyoming import read_event, serve, write_event
from tests.stream.fakes import LABELS, encode_pcm, energy_classifier, stream_with_beeps


def make_spotter() -> KeywordSpotter:
    return KeywordSpotter(energy_classifier, LABELS, clip_frames=98, detection=DetectionParams(threshold=0.7))


def send_audio(stream, audio: np.ndarray | bytes, rate: int = 16000, channels: int = 1, width: int = 2,
               chunk_bytes: int = 2048) -> None:
    """One stream: audio-start, the PCM (int16 samples or bytes) in `audio-chunk`s of `chunk_bytes`
    however that cuts the frames, audio-stop."""
    data = audio.astype("<i2").tobytes() if isinstance(audio, np.ndarray) else audio
    fmt = {"rate": rate, "width": width, "channels": channels}
    write_event(stream, "audio-start", fmt)
    for start in range(0, len(data), chunk_bytes):
        write_event(stream, "audio-chunk", fmt, data[start:start + chunk_bytes])
    write_event(stream, "audio-stop")


def answers(stream) -> list[tuple[str, dict]]:
    """(type, data) of the events the server sent for what came before, up to the `info` that
    answers a `describe` sent now."""
    write_event(stream, "describe")
    events = []
    while (event := read_event(stream))[0] != "info":
        events.append(event[:2])
    return events


@contextlib.contextmanager
def wyoming_server(on_detection=lambda detection: None, spotter_factory=make_spotter):
    """`serve` on a free local port in a thread (spotters from `spotter_factory`); yields a function
    that connects a client once the server accepts."""
    stop = threading.Event()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = threading.Thread(target=serve, args=(f"127.0.0.1:{port}", spotter_factory, "fake", stop, on_detection))
    server.start()

    def connect() -> socket.socket:
        for _ in range(100):
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=10)
            except ConnectionRefusedError:
                stop.wait(0.05)
        raise AssertionError(f"the Wyoming server on port {port} never accepted")

    try:
        yield connect
    finally:
        stop.set()
        server.join(timeout=10)


def test_wyoming_describe_detect_and_not_detected():
    detections = []
    with wyoming_server(detections.append) as connect:
        client = connect()
        stream = client.makefile("rwb")
        write_event(stream, "describe")
        kind, data, _ = read_event(stream)
        assert kind == "info" and [m["name"] for m in data["wake"][0]["models"]] == ["beep", "hum"]
        # Stereo 48 kHz audio: mixed down and resampled by the server.
        audio = stream_with_beeps([2.0])
        stereo = np.repeat(np.interp(np.arange(len(audio) * 3) / 3, np.arange(len(audio)), audio), 2).astype(np.int16)
        send_audio(stream, stereo, rate=48000, channels=2)
        kind, data, _ = read_event(stream)
        assert kind == "detection" and data["name"] == "beep" and 2000 < data["timestamp"] < 2800
        send_audio(stream, stream_with_beeps([], total=4.0))
        assert read_event(stream)[0] == "not-detected"
        client.close()
        assert [d.keyword for d in detections] == ["beep"]


def test_malformed_events_are_refused_in_one_line():
    import io

    import pytest

    from edge.core.errors import InputError

    for raw, message in [(b'[1, 2]\n', "JSON object with a 'type'"),
                         (b'{"type": "x", "data_length": "x"}\n', "data_length must be a whole number"),
                         (b'{"type": "x", "payload_length": 999999999}\n', "payload_length must be a whole number"),
                         (b'{"type": "x", "data": [1]}\n', "event data must be a JSON object"),
                         (b"{" + b" " * 70000 + b"}\n", "event header longer than")]:
        with pytest.raises(InputError, match=message):
            read_event(io.BytesIO(raw))


def test_a_bad_client_is_dropped_and_the_next_one_served(caplog):
    with wyoming_server() as connect:
        bad = connect()
        stream = bad.makefile("rwb")
        stream.write(b"not an event\n")
        stream.flush()
        assert stream.read() == b""  # the server hung up on this client
        bad.close()
        with connect() as good:
            stream = good.makefile("rwb")
            write_event(stream, "describe")
            assert read_event(stream)[0] == "info"
        assert any("dropped" in r.getMessage() for r in caplog.records)


def test_every_audio_format_and_any_cut_gives_the_same_detections():
    """Widths 1-4 and 1-3 channels, cut at odd byte counts (1023: a byte of a frame left over per
    chunk), or switching format mid-stream: the same samples reach the spotter, so the same
    detections come back as for 16-bit mono in whole chunks. (The audio is in steps of 256, exact in
    8-bit; the channels are identical, so their mean is the audio.)"""
    rng = np.random.default_rng(0)
    audio = (stream_with_beeps([1.2], total=3.0) >> 8 << 8).astype(np.int16)
    with wyoming_server() as connect, connect() as client:
        stream = client.makefile("rwb")
        send_audio(stream, audio)
        expected = answers(stream)
        assert [kind for kind, _ in expected] == ["detection"] and 1200 < expected[0][1]["timestamp"] < 2000
        for width, channels, chunk_bytes in [(2, 1, 1023), (4, 2, 1023), (3, 3, 1000), (1, 2, 777)]:
            pcm = encode_pcm(np.repeat(audio, channels), width, rng)
            send_audio(stream, pcm, width=width, channels=channels, chunk_bytes=chunk_bytes)
            assert answers(stream) == expected, (width, channels, chunk_bytes)
        # Format change mid-stream: the first second as 16-bit mono, the rest as 32-bit stereo.
        write_event(stream, "audio-start", {"rate": 16000, "width": 2, "channels": 1})
        write_event(stream, "audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, audio[:16000].tobytes())
        rest = encode_pcm(np.repeat(audio[16000:], 2), 4, rng)
        for start in range(0, len(rest), 1023):
            write_event(stream, "audio-chunk", {"rate": 16000, "width": 4, "channels": 2}, rest[start:start + 1023])
        write_event(stream, "audio-stop")
        assert answers(stream) == expected


def test_unusable_audio_formats_get_an_error_event_and_the_connection_stays_usable(caplog):
    with wyoming_server() as connect, connect() as client:
        stream = client.makefile("rwb")
        for fmt, text in [({"width": 0}, "audio width 0 cannot be used: bytes per sample must be 1, 2, 3 or 4"),
                          ({"width": 5}, "audio width 5 cannot be used: bytes per sample must be 1, 2, 3 or 4"),
                          ({"channels": 0}, "audio channels 0 cannot be used: must be a whole number >= 1"),
                          ({"rate": 0}, "audio rate 0 cannot be used: must be a whole number of Hz from 4000 to 384000")]:
            send_audio(stream, bytes(4000), **fmt)  # one error for the stream, not one per chunk
            assert answers(stream) == [("error", {"text": text, "code": "audio-format"}), ("not-detected", {})]
            assert text in caplog.text
        send_audio(stream, stream_with_beeps([1.2], total=3.0))
        assert [kind for kind, _ in answers(stream)] == ["detection"]


def test_sigterm_in_wyoming_mode_logs_the_stopped_summary(daemon_bundle, tmp_path):
    """As in the other modes (README, listen's Signals): SIGTERM ends `listen --wyoming` with the
    "stopped" line, counting the audio every client sent."""
    import json
    import signal
    import time

    from tests.stream.test_listen_e2e import finish, logs, start_daemon

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = start_daemon(tmp_path, "--model", str(daemon_bundle), "--wyoming", f"127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while True:
        assert daemon.poll() is None, finish(daemon)[1]
        try:
            client = socket.create_connection(("127.0.0.1", port), timeout=60)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the Wyoming server never accepted"
            time.sleep(0.05)
    with client:
        stream = client.makefile("rwb")
        send_audio(stream, np.zeros(24000, np.int16))  # 1.5 s of silence
        assert answers(stream) == [("not-detected", {})]
    daemon.send_signal(signal.SIGTERM)
    out, err = finish(daemon, 60)
    assert daemon.returncode == 0, err
    assert "received SIGTERM" in err and out == ""
    summary = [r for r in logs(err) if r["message"] == "stopped"]
    assert len(summary) == 1, err
    assert summary[0]["audio_seconds"] == 1.5 and summary[0]["detections"] == 0, json.dumps(summary)
    assert summary[0]["cpu_seconds"] > 0 and "cpu_seconds_per_audio_hour" in summary[0]
