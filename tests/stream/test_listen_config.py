"""`tinysense listen` settings: TOML config with the flags' names, flags winning, clear errors."""
from __future__ import annotations

import argparse

import pytest

from edge.cli import main
from edge.core.errors import InputError
from edge.hearing.listen import add_arguments, parse_threshold, resolve_settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_config_keys_are_the_flags_and_flags_win(tmp_path):
    config = tmp_path / "listen.toml"
    config.write_text('model = "m"\ndevice = 2\nkeywords = ["yes", "no"]\nthreshold = {default = 0.7, yes = 0.9}\n'
                      'stride_ms = 50\non-detect = ["true", "x"]\n')
    settings = resolve_settings(parse("--config", str(config)))
    assert (settings["model"], settings["device"], settings["keywords"], settings["stride-ms"]) == ("m", 2, ["yes", "no"], 50)
    assert (settings["threshold"], settings["thresholds"]) == (0.7, {"yes": 0.9})
    assert settings["on-detect"] == ["true", "x"]
    settings = resolve_settings(parse("--config", str(config), "--wav", "a.wav", "--keywords", "up,down", "stop",
                                      "--threshold", "0.5", "--on-detect", "false", "--quiet"))
    assert settings["wav"] == "a.wav" and settings.get("device") is None  # a source flag replaces the config's
    assert settings["keywords"] == ["up", "down", "stop"] and settings["threshold"] == 0.5
    assert settings["on-detect"] == ["false", "--quiet"]  # everything after --on-detect is its argv


@pytest.mark.parametrize("text, message", [
    ("colour = 1\n", "unknown key 'colour'"),
    ("threshold = true\n", "wrong type"),
    ("model = \n", "not valid TOML"),
    ("smoothing-ms = 100000000000000000000\n", "smoothing-ms must be a whole number from 1 to 10000000"),
    ("max-seconds = nan\n", "max-seconds must be a positive number of seconds, not nan"),
    ("log-format = \"xml\"\n", "log-format must be 'json' or 'text', not 'xml'"),
])
def test_bad_config_is_one_clear_line(tmp_path, capsys, text, message):
    config = tmp_path / "listen.toml"
    config.write_text(text)
    assert main(["listen", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(config) in err[0]


def test_threshold_forms():
    assert parse_threshold("0.8,yes=0.9") == (0.8, {"yes": 0.9})
    assert parse_threshold(0.5) == (0.5, {})
    with pytest.raises(InputError, match="not a number"):
        parse_threshold("yes=high")
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        parse_threshold("1.5")


def test_missing_model_and_hook_program_are_clear_errors(tmp_path, capsys):
    assert main(["listen", "--model", str(tmp_path / "none"), "--wav", "x.wav"]) == 2
    assert "no such model bundle folder" in capsys.readouterr().err
    assert main(["listen", "--wav", "x.wav", "--on-detect", "no-such-program-here"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["listen", "--wav", "x.wav", "--max-seconds", "inf"], "argument --max-seconds: 'inf' is not a positive finite number"),
    (["bench", "m", "--runs", "0"], "argument --runs: '0' is not a whole number >= 1"),
    (["bench", "m", "--warmup", "-1"], "argument --warmup: '-1' is not a whole number >= 0"),
])
def test_nonsense_numbers_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_channel_is_a_microphone_setting(tmp_path, capsys):
    config = tmp_path / "listen.toml"
    config.write_text('device = "USB"\nchannel = 1\n')
    assert resolve_settings(parse("--config", str(config)))["channel"] == 1
    assert resolve_settings(parse("--config", str(config), "--channel", "0"))["channel"] == 0
    assert "channel" not in resolve_settings(parse("--config", str(config), "--wav", "a.wav"))  # it went with the config's device
    with pytest.raises(InputError, match="channel chooses a microphone channel; it does not apply to wav, stdin or wyoming"):
        resolve_settings(parse("--stdin", "--channel", "1"))
    config.write_text("channel = -1\n")
    with pytest.raises(InputError, match=f"{config}: channel must be a whole number from 0 to 10000000, not -1"):
        resolve_settings(parse("--config", str(config)))
    with pytest.raises(SystemExit):
        parse("--channel", "-1")
    assert "argument --channel: '-1' is not a whole number >= 0" in capsys.readouterr().err
