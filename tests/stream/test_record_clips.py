"""`tinysense record-clips`: prompts, takes from a (fake) microphone, keeps the loudest second, refuses silence."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.core.errors import InputError
from edge.hearing.record_clips import ATTEMPTS, loudest_window, record_clips, take_problem

RATE = 16000


class FakeMic:
    """An audio source: 100 ms chunks of `audio`, then the end (as a device that goes away)."""

    description = "fake microphone"

    def __init__(self, audio: np.ndarray):
        self.audio, self.stopped = audio, None

    def chunks(self, stop: threading.Event):
        self.stopped = stop
        for start in range(0, len(self.audio), RATE // 10):
            yield self.audio[start:start + RATE // 10]


def room(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 30, int(seconds * RATE))


def session(word_starts: list[float | None], pause: float = 1.0, take: float = 2.0) -> np.ndarray:
    """Per take: `pause` s of room, then `take` s of room with a 0.4 s 'word' (a loud 700 Hz tone)
    starting at the given second of the take, or none."""
    parts = []
    for n, start in enumerate(word_starts):
        parts.append(room(pause, 2 * n))
        audio = room(take, 2 * n + 1)
        if start is not None:
            t = np.arange(int(0.4 * RATE)) / RATE
            i = int(start * RATE)
            audio[i:i + len(t)] += 9000 * np.sin(2 * np.pi * 700 * t) * np.hanning(len(t))
        parts.append(audio)
    return np.clip(np.rint(np.concatenate(parts)), -32768, 32767).astype(np.int16)


def test_records_n_centred_one_second_clips_and_numbers_on(tmp_path):
    mic = FakeMic(session([0.3, 1.3, 0.8]))
    said = []
    paths = record_clips(mic, tmp_path / "enrol", "Hey  Computer", 3, tell=said.append)
    assert [p.name for p in paths] == ["hey-computer_000.wav", "hey-computer_001.wav", "hey-computer_002.wav"]
    for path in paths:
        audio, rate = sf.read(path, dtype="int16")
        assert rate == RATE and audio.shape == (RATE,) and sf.info(path).subtype == "PCM_16"
        loud = np.flatnonzero(np.abs(audio) > 3000)
        assert abs((loud[0] + loud[-1]) / 2 - RATE / 2) < 0.02 * RATE  # the word in the middle
    assert sum("say 'hey computer' now" in line for line in said) == 3
    assert mic.stopped.is_set()
    again = record_clips(FakeMic(session([0.5])), tmp_path / "enrol", "hey computer", 1, tell=said.append)
    assert [p.name for p in again] == ["hey-computer_003.wav"]  # never overwrites


def test_a_silent_take_is_refused_and_taken_again(tmp_path):
    said = []
    paths = record_clips(FakeMic(session([None, 0.6])), tmp_path, "marvin", 1, tell=said.append)
    assert len(paths) == 1
    refused = [line for line in said if "take 1 refused" in line]
    assert len(refused) == 1 and "silent: its loudest 100 ms is at" in refused[0]


def test_takes_without_speech_in_a_row_give_up_with_the_clips_so_far(tmp_path):
    with pytest.raises(InputError, match=f"fake microphone: {ATTEMPTS} takes in a row without speech .* 1 clip"):
        record_clips(FakeMic(session([0.5] + [None] * ATTEMPTS)), tmp_path, "marvin", 2, tell=lambda _: None)
    assert [p.name for p in tmp_path.iterdir()] == ["marvin_000.wav"]


def test_a_source_that_ends_early(tmp_path):
    with pytest.raises(InputError, match="the audio ended after 1 of 3 clips"):
        record_clips(FakeMic(session([0.5, 0.5])[:-RATE]), tmp_path, "marvin", 3, tell=lambda _: None)


def test_a_steady_hum_is_no_word():
    t = np.arange(RATE) / RATE
    hum = (8000 * np.sin(2 * np.pi * 50 * t)).astype(np.int16)
    assert "no word in it" in take_problem(hum)
    assert take_problem(np.zeros(RATE, np.int16)).startswith("silent")


def test_loudest_window_centres_a_short_clip_and_finds_the_word():
    short = np.full(8000, 100, np.int16)
    out = loudest_window(short, RATE)
    assert len(out) == RATE and (out[4000:12000] == 100).all() and not out[:4000].any()
    long = np.zeros(3 * RATE, np.int16)
    long[30000:34000] = 5000
    out = loudest_window(long, RATE)
    assert (out == 5000).sum() == 4000


def test_the_command_records_from_the_chosen_device(tmp_path, monkeypatch, capsys):
    import edge.hearing.audio_sources as sources

    opened = {}

    def fake_microphone(device, **kwargs):
        opened.update(device=device, rate=kwargs["rate"], channel=kwargs["channel"])
        return FakeMic(session([0.3, 0.9]))

    monkeypatch.setattr(sources, "MicrophoneSource", fake_microphone)
    assert main(["record-clips", "--word", "sheila", "--count", "2", "--device", "usb", "--out", str(tmp_path / "c")]) == 0
    assert opened == {"device": "usb", "rate": None, "channel": None}
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["sheila_000.wav", "sheila_001.wav"]
    assert "[2/2] saved" in capsys.readouterr().out
    assert main(["record-clips", "--word", "sheila", "--take-seconds", "0.5", "--out", str(tmp_path / "c")]) == 2
    assert "take-seconds >= seconds" in capsys.readouterr().err


def test_a_microphone_that_cannot_be_opened_ends_the_command_at_once(tmp_path, capsys):
    class NoDevices:
        paInt16, paContinue, paInputOverflow = 8, 0, 2

        class PyAudio:
            def get_default_input_device_info(self):
                raise OSError("no default input device")

            def terminate(self):
                pass

    from edge.hearing.audio_sources import MicrophoneSource

    source = MicrophoneSource(None, pyaudio_module=NoDevices, sleep=lambda stop, seconds: True)
    with pytest.raises(InputError, match="microphone '\\(default\\)': no audio at all"):
        record_clips(source, tmp_path, "sheila", 2, tell=lambda _: None)
