"""`tinysense listen`: the wake-word daemon.

Reads a microphone, a wav file or raw PCM on stdin, spots keywords with a keyword bundle (a `kws`
microfrontend model, a `kws-embedding` head on the speech embedding, or a two-stage `kws-cascade`
of both; edge.hearing.spotters) and, for
each detection, prints one JSON line on stdout, runs the `--on-detect` program (argv list, no
shell; the keyword, score and time in its environment) and publishes the event on the optional
Unix socket. Logs go to stderr as JSON lines. A TOML config file takes the same keys as the
flags (flags win). SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the config and the model.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from edge.core.argtypes import non_negative_int, positive_float
from edge.core.errors import InputError
from edge.core.memory import memory_mb

log = logging.getLogger("tinysense.listen")

#: The recommended Pi bundle `make train export` leaves: the two-stage cascade (edge.hearing.cascade).
DEFAULT_MODEL = "models/wakeword"
SOURCES = ("wav", "device", "stdin", "wyoming")
SOURCE_KEYS = (*SOURCES, "fast", "rate", "channel")
#: config key -> type, for the TOML file; the same names as the flags
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str, "variant": str, "wav": str, "fast": bool, "device": (int, str), "stdin": bool, "rate": int,
    "channel": int,
    "keywords": (list, str), "threshold": (float, int, str, dict), "stride-ms": int, "smoothing-ms": int,
    "min-count": int, "refractory-ms": int, "on-detect": (list, str), "socket": str, "max-seconds": (float, int),
    "threads": int, "log-format": str, "wyoming": str, "frontend": str, "min-level-dbfs": (float, int),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Example: tinysense listen --model models/wakeword --keywords yes,no --threshold 0.8,yes=0.9 "
                     "--socket /tmp/kws.sock --on-detect notify-send wake-word")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML file with the same keys as these flags (e.g. threshold = 0.8); flags override it")
    parser.add_argument("--model", default=None, metavar="DIR", help=f"keyword bundle folder: kws, kws-embedding or a kws-cascade such as models/wakeword "
                             f"(default: {DEFAULT_MODEL})")
    parser.add_argument("--variant", default=None, help="model variant: int8, float32, float16, dynamic (default: int8)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wav", default=None, metavar="FILE", help="read a wav/flac file instead of a microphone")
    source.add_argument("--device", default=None, metavar="N|NAME",
                        help="capture device index or part of its name (default: the system's default input)")
    source.add_argument("--stdin", action="store_true", default=None, help="read raw 16-bit mono PCM from stdin")
    source.add_argument("--wyoming", default=None, metavar="HOST:PORT",
                        help="serve the Wyoming wake-word protocol (Home Assistant) instead of reading audio, e.g. 0.0.0.0:10400")
    parser.add_argument("--fast", action="store_true", default=None, help="with --wav: as fast as possible, not real time")
    parser.add_argument("--rate", type=int, default=None,
                        help="capture/stdin sample rate in Hz, resampled to 16 kHz (default: 16000 if the device has it, else its native rate)")
    parser.add_argument("--channel", type=non_negative_int, default=None, metavar="N",
                        help="microphone: use only this channel, numbered from 0 (default: one channel if the "
                             "device allows, else the mean of all it opens with)")
    parser.add_argument("--keywords", nargs="+", default=None, metavar="WORD",
                        help="keywords to report, space- or comma-separated (default: all the model knows)")
    parser.add_argument("--threshold", default=None, metavar="T[,WORD=T...]",
                        help="detection threshold for all keywords and/or per keyword, e.g. 0.8,yes=0.9 (default: the manifest's)")
    parser.add_argument("--stride-ms", type=int, default=None, help="run the model every this many ms (multiple of 10)")
    parser.add_argument("--smoothing-ms", type=int, default=None, help="posterior smoothing window in ms")
    parser.add_argument("--min-count", type=int, default=None, help="inferences in a row above the threshold to fire")
    parser.add_argument("--refractory-ms", type=int, default=None, help="quiet time after a detection in ms")
    parser.add_argument("--min-level-dbfs", type=float, default=None, metavar="DB",
                        help="a window whose loudest 10 ms (DC removed) is quieter than this many dB re full "
                             "scale is taken as silence, not scored, so an idle or muted input fires nothing "
                             "(default: the manifest's, else -70; --min-level-dbfs=-inf scores everything)")
    parser.add_argument("--frontend", choices=("fresh", "stream"), default=None,
                        help="stream: one continuous front-end; fresh: each window's features from a reset "
                             "front-end, ~3x the CPU (default: the manifest's: stream for --warm-frontend models)")
    parser.add_argument("--socket", default=None, metavar="PATH", help="publish events on this Unix socket (JSON lines)")
    parser.add_argument("--max-seconds", type=positive_float, default=None, help="stop after this much audio (default: run until stopped)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: 1)")
    parser.add_argument("--log-format", choices=("json", "text"), default=None, help="stderr log lines (default: json)")
    parser.add_argument("--on-detect", nargs=argparse.REMAINDER, default=None, metavar="PROGRAM [ARG ...]",
                        help="run PROGRAM with ARGs on each detection (must come last); its environment holds "
                             "TINYSENSE_KEYWORD, TINYSENSE_SCORE and TINYSENSE_TIME")


# -- settings ---------------------------------------------------------------------------------------
def read_config(path: Path) -> dict:
    """The TOML config as {flag-name: value}; unknown keys or wrong types are an error naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config {path} is not valid TOML: {exc}") from None
    config = {}
    for key, value in data.items():
        name = key.replace("_", "-")
        if name not in CONFIG_KEYS:
            raise InputError(f"config {path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        if not isinstance(value, CONFIG_KEYS[name]) or (isinstance(value, bool) and CONFIG_KEYS[name] is not bool):
            raise InputError(f"config {path}: {key} = {value!r} has the wrong type")
        config[name] = value
    return config


def resolve_settings(args: argparse.Namespace) -> dict:
    """Flags over config over defaults, as one dict with flag names (dashes) as keys."""
    config = read_config(args.config) if args.config else {}
    flags = {name: getattr(args, name.replace("-", "_")) for name in CONFIG_KEYS}
    flags = {k: v for k, v in flags.items() if v is not None}
    if any(k in flags for k in SOURCES):  # a source on the command line replaces the config's (and its channel)
        config = {k: v for k, v in config.items() if k not in (*SOURCES, "channel")}
    settings = {"model": DEFAULT_MODEL, "threads": 1, "log-format": "json", **config, **flags}
    if sum(settings.get(k) not in (None, False) for k in SOURCES) > 1:
        raise InputError("choose one audio source: wav, device, stdin or wyoming")

    def source(key: str) -> str:  # errors name the config file when the value came from it
        return f"{args.config}: " if key in config and key not in flags else ""

    if settings.get("frontend") not in (None, "fresh", "stream"):
        raise InputError(f"{source('frontend')}frontend must be 'fresh' or 'stream', not {settings['frontend']!r}")
    if settings.get("log-format") not in ("json", "text"):
        raise InputError(f"{source('log-format')}log-format must be 'json' or 'text', not {settings['log-format']!r}")
    limit = settings.get("max-seconds")
    if limit is not None and not 0 < limit < 1e9:  # also refuses nan and inf
        raise InputError(f"{source('max-seconds')}max-seconds must be a positive number of seconds, not {limit!r}")
    floor = settings.get("min-level-dbfs")
    if floor is not None and not floor <= 0:  # also refuses nan
        raise InputError(f"{source('min-level-dbfs')}min-level-dbfs must be a level in dBFS, 0 or below, not {floor!r}")
    for key in ("stride-ms", "smoothing-ms", "refractory-ms", "min-count", "threads", "rate", "channel"):
        lowest = 0 if key in ("refractory-ms", "channel") else 1
        if settings.get(key) is not None and not lowest <= settings[key] <= 10_000_000:
            raise InputError(f"{source(key)}{key} must be a whole number from {lowest} to 10000000, not {settings[key]!r}")
    if settings.get("channel") is not None and any(settings.get(k) not in (None, False) for k in ("wav", "stdin", "wyoming")):
        raise InputError(f"{source('channel')}channel chooses a microphone channel; it does not apply to wav, stdin or wyoming")
    settings["keywords"] = split_words(settings.get("keywords"))
    settings["threshold"], settings["thresholds"] = parse_threshold(settings.get("threshold"))
    on_detect = settings.get("on-detect")
    if on_detect is not None:
        settings["on-detect"] = check_program([on_detect] if isinstance(on_detect, str) else [str(a) for a in on_detect])
    return settings


def split_words(value) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    words = [w.strip() for item in items for w in str(item).split(",") if w.strip()]
    return words or None


def parse_threshold(value) -> tuple[float | None, dict[str, float]]:
    """'0.8', '0.8,yes=0.9', 0.8 or {default = 0.8, yes = 0.9} -> (default, per keyword)."""
    if value is None:
        return None, {}
    if isinstance(value, (int, float)):
        return float(value), {}
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = [tuple(part.split("=", 1)) if "=" in part else ("default", part)
                 for part in str(value).split(",") if part.strip()]
    default, per_word = None, {}
    for word, text in items:
        try:
            number = float(text)
        except (TypeError, ValueError):
            raise InputError(f"threshold {word}={text!r} is not a number") from None
        if not 0.0 < number <= 1.0:
            raise InputError(f"threshold {word}={number} must be in (0, 1]")
        if word.strip() == "default":
            default = number
        else:
            per_word[word.strip()] = number
    return default, per_word


def check_program(argv: list[str]) -> list[str]:
    if not argv or not argv[0]:
        raise InputError("--on-detect needs a program to run")
    if shutil.which(argv[0]) is None:
        raise InputError(f"--on-detect program not found or not executable: {argv[0]}")
    return argv


# -- output -----------------------------------------------------------------------------------------
class JsonLogFormatter(logging.Formatter):
    """One JSON object per log record: time, level, logger, message (plus fields passed in `extra`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def use_log_format(name: str) -> None:
    if name == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())


class HookRunner:
    """Starts the --on-detect program per detection without waiting; reaps and logs exits."""

    def __init__(self, argv: list[str] | None):
        self.argv = argv
        self.running: list[subprocess.Popen] = []

    def __call__(self, event: dict) -> None:
        self.reap()
        if not self.argv:
            return
        env = {**os.environ, "TINYSENSE_KEYWORD": event["keyword"], "TINYSENSE_SCORE": str(event["score"]),
               "TINYSENSE_TIME": str(event["time"])}
        try:
            self.running.append(subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr))
        except OSError as exc:
            log.error("cannot run --on-detect %s: %s", self.argv[0], exc)

    def reap(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        for process in list(self.running):
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue
            self.running.remove(process)
            if code:
                log.warning("--on-detect %s exited with status %d", self.argv[0] if self.argv else "?", code)


# -- the daemon -------------------------------------------------------------------------------------
class Listener:
    """Owns the spotter, the source and the outputs; `run()` loops until the audio ends or a stop."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stop = threading.Event()
        self.reload_requested = threading.Event()
        self.settings = resolve_settings(args)
        use_log_format(self.settings["log-format"])
        self.spotter = self.make_spotter(self.settings)
        self.hook = HookRunner(self.settings.get("on-detect"))
        self.socket = self.make_socket(self.settings.get("socket"))
        self.detections = 0
        self.samples = self.spotter_offset = 0
        self.lock = threading.RLock()

    @staticmethod
    def make_spotter(settings: dict):
        from edge.hearing.spotters import open_spotter

        return open_spotter(
            settings["model"], variant=settings.get("variant"), keywords=settings["keywords"],
            threads=settings["threads"], threshold=settings["threshold"], thresholds=settings["thresholds"] or None,
            stride_ms=settings.get("stride-ms"), smoothing_ms=settings.get("smoothing-ms"),
            min_count=settings.get("min-count"), refractory_ms=settings.get("refractory-ms"),
            min_level_dbfs=settings.get("min-level-dbfs"),
            fresh_frontend=None if settings.get("frontend") is None else settings["frontend"] == "fresh")

    @staticmethod
    def make_socket(path: str | None):
        if not path:
            return None
        from edge.hearing.event_socket import EventSocket

        return EventSocket(path)

    def open_source(self):
        from edge.hearing.audio_sources import open_source

        s = self.settings
        return open_source(wav=s.get("wav"), fast=bool(s.get("fast")), stdin=sys.stdin.buffer if s.get("stdin") else None,
                           device=s.get("device"), rate=s.get("rate"), channel=s.get("channel"))

    def install_signal_handlers(self) -> None:
        def stop(signum, _frame):
            log.info("received %s; stopping", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def reload(self) -> None:
        """Re-read the config and the model; on any error keep running with the old ones."""
        self.reload_requested.clear()
        new_socket = None
        try:
            settings = resolve_settings(self.args)
            spotter = self.make_spotter(settings)
            if settings.get("socket") != self.settings.get("socket"):
                try:
                    new_socket = self.make_socket(settings.get("socket"))
                except Exception:
                    spotter.close()
                    raise
        except Exception as exc:  # whatever a hand-edited file does, the daemon keeps listening
            log.error("reload failed, keeping the current model and settings: %s", exc)
            return
        if any(settings.get(k) != self.settings.get(k) for k in SOURCE_KEYS):
            log.warning("the audio source changed in the config; restart the daemon to use it")
        if settings.get("socket") != self.settings.get("socket"):
            if self.socket:
                self.socket.close()
            self.socket = new_socket
        self.spotter.close()
        self.spotter, self.settings = spotter, settings
        self.hook.argv = settings.get("on-detect")
        self.spotter_offset = self.samples
        log.info("reloaded config and model", extra={"fields": {"model": str(settings["model"])}})

    def emit(self, detection, offset_seconds: float = 0.0) -> None:
        event = {"time": round(detection.time + offset_seconds, 3),
                 "wall_time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "keyword": detection.keyword, "score": round(detection.score, 4)}
        with self.lock:  # Wyoming clients emit from their own threads
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
            self.detections += 1
            self.hook(event)
            if self.socket:
                self.socket.publish(event)

    def serve_wyoming(self) -> int:
        """Wyoming mode: each Home Assistant connection gets a fresh spotter from the current settings."""
        from edge.hearing.wyoming import serve

        def make_spotter():
            with self.lock:
                if self.reload_requested.is_set():
                    self.reload()
                return self.make_spotter(self.settings)

        def count(samples: int) -> None:
            with self.lock:
                self.samples += samples

        self.spotter.close()
        started = time.process_time()
        try:
            serve(self.settings["wyoming"], make_spotter, str(self.settings["model"]), self.stop, self.emit, count)
        finally:
            self.shut_down(started)
        return 0

    def shut_down(self, started: float) -> None:
        """Close the socket, reap the hooks and log the "stopped" summary: audio seconds, detections,
        CPU seconds (process time since `started`) and per audio hour, memory."""
        if self.socket:
            self.socket.close()
        self.hook.reap(wait=5.0)
        audio = self.samples / self.spotter.sample_rate
        cpu = time.process_time() - started
        log.info("stopped", extra={"fields": {
            "audio_seconds": round(audio, 2), "detections": self.detections, "cpu_seconds": round(cpu, 3),
            "cpu_seconds_per_audio_hour": round(cpu * 3600 / audio, 1) if audio else None,
            **memory_mb()}})

    def run(self) -> int:
        self.install_signal_handlers()
        if self.settings.get("wyoming"):
            return self.serve_wyoming()
        source = self.open_source()
        s = self.settings
        rate = self.spotter.sample_rate
        limit = None if s.get("max-seconds") is None else int(s["max-seconds"] * rate)
        log.info("listening", extra={"fields": {"source": source.description, "keywords": self.spotter.keywords,
                                                 "detection": dataclasses.asdict(self.spotter.detection)}})
        started = time.process_time()
        try:
            for chunk in source.chunks(self.stop):
                if self.reload_requested.is_set():
                    self.reload()
                if limit is not None:
                    chunk = chunk[:limit - self.samples]
                for detection in self.spotter.feed(chunk):
                    self.emit(detection, self.spotter_offset / rate)
                self.samples += len(chunk)
                if limit is not None and self.samples >= limit:
                    break
            # The end of the input: decide on the audio still in the window (a keyword at the very end).
            if 0 < self.samples < self.spotter.clip_samples:
                log.warning("the audio ended after %.2f s, less than the model's %.2f s window; scored padded with silence",
                            self.samples / rate, self.spotter.clip_samples / rate)
            for detection in self.spotter.finish():
                self.emit(detection, self.spotter_offset / rate)
        finally:
            self.spotter.close()
            self.shut_down(started)
        return 0


def run(args: argparse.Namespace) -> int:
    return Listener(args).run()
