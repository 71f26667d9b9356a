"""`tinysense install-service` writes a valid unit and a config the daemon reads."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from edge.cli import main
from edge.hearing.listen import read_config
from tests.stream.daemon_bundle import WORDS

KEYWORD = WORDS[0]


def test_install_service_writes_unit_and_config(daemon_bundle, tmp_path, capsys):
    model = daemon_bundle
    root = tmp_path / "root"
    assert main(["install-service", "--model", str(model), "--root", str(root), "--device", "USB",
                 "--threshold", f"0.8,{KEYWORD}=0.9"]) == 0
    unit = (root / "etc/systemd/system/tinysense-listen.service").read_text()
    for line in ("Restart=on-failure", "User=tinysense", "DynamicUser=yes", "ExecReload=/bin/kill -HUP $MAINPID",
                 "listen --config /etc/tinysense/listen.toml"):
        assert line in unit
    assert "User=root" not in unit
    config = read_config(root / "etc/tinysense/listen.toml")
    assert config == {"model": str(model.resolve()), "socket": "/run/tinysense/events.sock", "device": "USB",
                      "threshold": f"0.8,{KEYWORD}=0.9"}
    # An existing config is kept unless --force.
    (root / "etc/tinysense/listen.toml").write_text('model = "mine"\n')
    assert main(["install-service", "--model", str(model), "--root", str(root)]) == 0
    assert read_config(root / "etc/tinysense/listen.toml") == {"model": "mine"}
    assert not list(root.rglob("*.tmp"))
    if shutil.which("systemd-analyze"):  # present here (Debian's systemd package); optional elsewhere
        verify = subprocess.run(["systemd-analyze", "verify", str(root / "etc/systemd/system/tinysense-listen.service")],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr


def test_install_service_refuses_a_folder_without_a_bundle(tmp_path, capsys):
    assert main(["install-service", "--model", str(tmp_path), "--root", str(tmp_path / "root")]) == 2
    assert "not a model bundle" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("args, message", [
    (["--threshold", "abc"], "threshold default='abc' is not a number"),
    (["--threshold", "1.5"], "must be in (0, 1]"),
    (["--keywords", "nope"], "unknown keyword(s) 'nope'"),
    (["--keywords", "yes\nno"], "unknown keyword(s) 'yes\\nno'"),
    (["--threshold", "0.8,nope=0.9"], "unknown keyword(s) 'nope'"),
])
def test_install_service_refuses_settings_the_daemon_would_refuse(daemon_bundle, tmp_path, capsys, args, message):
    assert main(["install-service", "--model", str(daemon_bundle), "--root", str(tmp_path / "root"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "root").exists()


def test_unit_escapes_systemd_specifiers(tmp_path):
    from edge.hearing.service import unit_text

    assert "ExecStart=/opt/100%%/tinysense listen" in unit_text("/opt/100%/tinysense", "/etc/x.toml", "tinysense")
