"""A Wyoming protocol wake-word server, so Home Assistant can use tinysense (`listen --wyoming`).

Wyoming events are a JSON header line, then `data_length` bytes of JSON data and
`payload_length` bytes of payload. Home Assistant sends `describe` (answered with `info`), then
per pipeline run `detect`, `audio-start`, `audio-chunk` (PCM payload) ... `audio-stop`; the
server answers `detection` for each keyword heard and `not-detected` at the end when none was.
Each connection gets its own spotter (its own stream state) over the one loaded bundle.

Audio comes in any format Wyoming's `AudioChunkConverter` takes (widths 1-4 bytes, any channel
count and rate; each chunk carries its format), decoded to 16 kHz mono int16 by
`edge.hearing.audio_sources.PcmDecoder`, which carries a frame split between chunks to the next
one. A format that cannot be used is answered with one `error` event (`text`, `code`
"audio-format") and that stream's audio is skipped; the connection stays open.
"""
from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from edge import __version__
from edge.hearing.audio_sources import PcmDecoder
from edge.core.errors import InputError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "1.5.2"
#: (key, default) of the audio format in `audio-start` and `audio-chunk` data, in PcmDecoder's order
AUDIO_FORMAT = (("rate", 16000), ("width", 2), ("channels", 1))


MAX_HEADER = 64 * 1024  #: bytes in one JSON header line
MAX_BODY = 16 * 1024 * 1024  #: bytes of data or payload in one event (1 s of 16 kHz audio is 32 KB)


def read_event(stream: BinaryIO) -> tuple[str, dict, bytes] | None:
    """(type, data, payload) of the next event, or None at end of stream. A malformed or oversized
    event raises InputError: the port may be open to the network."""
    line = stream.readline(MAX_HEADER + 1)
    if not line:
        return None
    if len(line) > MAX_HEADER:
        raise InputError(f"event header longer than {MAX_HEADER} bytes")
    header = json.loads(line)
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise InputError("an event header must be a JSON object with a 'type' string")
    data = header.get("data") or {}
    extra = json.loads(stream.read(body_length(header, "data_length")) or b"{}")
    if not isinstance(data, dict) or not isinstance(extra, dict):
        raise InputError("event data must be a JSON object")
    payload = stream.read(body_length(header, "payload_length"))
    return header["type"], {**data, **extra}, payload


def body_length(header: dict, key: str) -> int:
    length = header.get(key) or 0
    if not isinstance(length, int) or not 0 <= length <= MAX_BODY:
        raise InputError(f"{key} must be a whole number of bytes up to {MAX_BODY}, got {length!r}")
    return length


def write_event(stream: BinaryIO, kind: str, data: dict | None = None, payload: bytes = b"") -> None:
    header: dict = {"type": kind, "version": PROTOCOL_VERSION}
    body = json.dumps(data).encode() if data else b""
    if body:
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = len(payload)
    stream.write(json.dumps(header).encode() + b"\n" + body + payload)
    stream.flush()


def info(keywords: list[str], model_name: str) -> dict:
    attribution = {"name": "tinysense", "url": "https://github.com/"}
    models = [{"name": k, "description": k, "phrase": k, "attribution": attribution, "installed": True,
               "languages": ["en"], "version": __version__} for k in keywords]
    return {"wake": [{"name": "tinysense", "description": f"tinysense keyword spotter ({model_name})",
                      "attribution": attribution, "installed": True, "version": __version__, "models": models}]}


class WakeWordHandler(socketserver.StreamRequestHandler):
    """One client connection: a spotter of its own, audio in, detections out."""

    server: "WyomingServer"

    def handle(self) -> None:
        spotter = self.server.make_spotter()
        names: set[str] | None = None
        decoder: PcmDecoder | None = None
        refused = None  # the audio format this stream was refused for with an `error`; its chunks are skipped
        detected = False
        client = self.client_address or "local"
        log.info("wyoming client connected: %s", client)

        def report(samples: np.ndarray) -> bool:
            """Feed the spotter; send what it detects. True if a detection was sent."""
            self.server.on_audio(len(samples))
            return send(spotter.feed(samples))

        def send(detections: list) -> bool:
            """Send each wanted detection to the client. True if one was sent."""
            sent = False
            for detection in detections:
                if names is None or detection.keyword in names:
                    sent = True
                    write_event(self.wfile, "detection", {"name": detection.keyword,
                                                          "timestamp": int(detection.time * 1000)})
                    self.server.on_detection(detection)
            return sent

        def decoder_for(data: dict) -> PcmDecoder | None:
            """The decoder for an audio event's format (rate, width, channels): a new one when the
            format changed, after reporting what the previous one still held; None, after one
            `error` event, for a format that cannot be used."""
            nonlocal decoder, refused, detected
            audio_format = tuple(data.get(key, default) for key, default in AUDIO_FORMAT)
            if decoder is not None and audio_format == decoder.format:
                return decoder
            if audio_format == refused:
                return None
            try:
                new = PcmDecoder(*audio_format)
            except InputError as exc:
                refused = audio_format
                log.warning("wyoming client %s: %s", client, exc)
                write_event(self.wfile, "error", {"text": str(exc), "code": "audio-format"})
                return None
            if decoder is not None:
                detected |= report(decoder.flush())
            decoder = new
            return decoder

        try:
            while (event := read_event(self.rfile)) is not None:
                kind, data, payload = event
                if kind == "describe":
                    write_event(self.wfile, "info", info(spotter.keywords, self.server.model_name))
                elif kind == "detect":
                    names = set(data.get("names") or []) or None
                elif kind == "audio-start":
                    spotter.reset()
                    decoder = refused = None
                    detected = False
                    decoder_for(data)
                elif kind == "audio-chunk" and payload:
                    if (chunk_decoder := decoder_for(data)) is not None:
                        detected |= report(chunk_decoder.process(payload))
                elif kind == "audio-stop":
                    if decoder:  # the resampler's last block: a word at the very end still counts
                        detected |= report(decoder.flush())
                    detected |= send(spotter.finish())  # and the windows that would slide over it
                    decoder = refused = None
                    if not detected:
                        write_event(self.wfile, "not-detected")
                    detected = False
        except Exception as exc:  # one bad client is logged in one line; the server serves the next
            log.warning("wyoming client %s: dropped: %s", client, exc)
        finally:
            spotter.close()


class WyomingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], make_spotter: Callable, model_name: str,
                 on_detection: Callable = lambda detection: None, on_audio: Callable[[int], None] = lambda samples: None):
        self.make_spotter, self.model_name, self.on_detection = make_spotter, model_name, on_detection
        self.on_audio = on_audio
        super().__init__(address, WakeWordHandler)


def serve(address: str, make_spotter: Callable, model_name: str, stop: threading.Event,
          on_detection: Callable = lambda detection: None, on_audio: Callable[[int], None] = lambda samples: None) -> None:
    """Serve `HOST:PORT` until `stop` is set. `on_detection(detection)` is called for each detection
    sent to a client and `on_audio(samples)` with the number of 16 kHz samples each spotter is fed,
    from the clients' threads."""
    host, _, port = address.rpartition(":")
    try:
        server = WyomingServer((host or "0.0.0.0", int(port)), make_spotter, model_name, on_detection, on_audio)
    except (ValueError, OSError, OverflowError) as exc:
        raise InputError(f"cannot serve Wyoming on {address!r}: {exc}") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.25}, daemon=True)
    thread.start()
    log.info("wyoming wake-word server on %s:%d", *server.server_address[:2])
    stop.wait()
    server.shutdown()
    server.server_close()
