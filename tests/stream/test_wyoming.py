"""The Wyoming wake-word server speaks the protocol Home Assistant uses (fake classifier, no model)."""
from __future__ import annotations

import contextlib
import socket
import threading

import numpy as np

from edge.hearing.spotter import DetectionParams, KeywordSpotter
from edge.hearing.wyoming import read_event, serve, write_event
from tests.stream.fakes import LABELS, energy_classifier, stream_with_beeps


def make_spotter() -> KeywordSpotter:
    return KeywordSpotter(energy_classifier, LABELS, clip_frames=98, detection=DetectionParams(threshold=0.7))


def send_audio(stream, audio: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    fmt = {"rate": rate, "width": 2, "channels": channels}
    write_event(stream, "audio-start", fmt)
    for start in range(0, len(audio), 1024 * channels):
        write_event(stream, "audio-chunk", fmt, audio[start:start + 1024 * channels].astype("<i2").tobytes())
    write_event(stream, "audio-stop")


@contextlib.contextmanager
def wyoming_server(on_detection=lambda detection: None):
    """`serve` on a free local port in a thread; yields a function that connects a client once the
    server accepts."""
    stop = threading.Event()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = threading.Thread(target=serve, args=(f"127.0.0.1:{port}", make_spotter, "fake", stop, on_detection))
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
        write_event(stream, "audio-start", {"rate": 0, "width": 2, "channels": 1})  # ZeroDivisionError inside
        assert stream.read() == b""  # the server hung up on this client
        bad.close()
        with connect() as good:
            stream = good.makefile("rwb")
            write_event(stream, "describe")
            assert read_event(stream)[0] == "info"
        assert any("dropped" in r.getMessage() for r in caplog.records)
