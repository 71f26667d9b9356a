"""`tinysense install-service` writes a valid unit and a config the daemon reads."""
from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.cli import main
from edge.hearing.listen import read_config
from tests.stream.daemon_bundle import WORDS

KEYWORD = WORDS[0]


def test_install_service_writes_unit_and_config(public_install, tmp_path, capsys):
    model, executable = public_install.model, public_install.executable
    root = tmp_path / "root"
    assert main(["install-service", "--model", str(model), "--executable", str(executable), "--root", str(root),
                 "--device", "USB", "--channel", "1",
                 "--threshold", f"0.8,{KEYWORD}=0.9"]) == 0
    unit = (root / "etc/systemd/system/tinysense-listen.service").read_text()
    for line in ("Restart=on-failure", "User=tinysense", "DynamicUser=yes", "ExecReload=/bin/kill -HUP $MAINPID",
                 "listen --config /etc/tinysense/listen.toml"):
        assert line in unit
    assert "User=root" not in unit
    assert f"ExecStart={executable} listen" in unit
    config = read_config(root / "etc/tinysense/listen.toml")
    assert config == {"model": str(model.resolve()), "socket": "/run/tinysense/events.sock", "device": "USB",
                      "channel": 1, "threshold": f"0.8,{KEYWORD}=0.9"}
    # An existing config is kept unless --force.
    (root / "etc/tinysense/listen.toml").write_text('model = "mine"\n')
    assert main(["install-service", "--model", str(model), "--executable", str(executable), "--root", str(root)]) == 0
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


@dataclass
class PublicInstall:
    folder: Path
    model: Path
    executable: Path


@pytest.fixture
def public_install(daemon_bundle):
    """A copy of the bundle and a stand-in tinysense program in a folder any user can enter, as the
    service's user needs them (pytest's own base folder has mode 0700); removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="tinysense-service-test-"))
    try:
        folder.chmod(0o755)
        model = Path(shutil.copytree(daemon_bundle, folder / "models" / "kws"))
        for path in (folder / "models", model, *model.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        executable = folder / "bin" / "tinysense"
        executable.parent.mkdir()
        executable.parent.chmod(0o755)
        executable.write_text("#!/bin/sh\nexit 0\n")
        executable.chmod(0o755)
        yield PublicInstall(folder, model, executable)
    finally:
        shutil.rmtree(folder)


def install(setup: PublicInstall, root: Path, *extra: str) -> int:
    return main(["install-service", "--model", str(setup.model), "--executable", str(setup.executable),
                 "--root", str(root), *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("private, mode, message", [
    # A home folder of mode 0700 (Debian's default for new users) or 0750 above the bundle.
    ("models", 0o700, "{model}/manifest.json: the service's user cannot reach it: {folder}/models is drwx------; "
                      "run `chmod o+x {folder}/models`, or move the model to /opt/tinysense or /var/lib/tinysense"),
    ("models", 0o750, "{folder}/models is drwxr-x---; run `chmod o+x {folder}/models`"),
    ("models/kws/manifest.json", 0o600, "{model}/manifest.json: the service's user cannot read it (-rw-------); "
                                        "run `chmod o+r {model}/manifest.json`, or move the model to /opt/tinysense"),
    ("models/kws/model_float16.tflite", 0o600, "{model}/model_float16.tflite: the service's user cannot read it"),
    ("bin/tinysense", 0o744, "{folder}/bin/tinysense: the service's user cannot run it (-rwxr--r--); "
                             "run `chmod o+rx {folder}/bin/tinysense`, or install tinysense where any user can read it"),
    ("bin", 0o700, "{folder}/bin/tinysense: the service's user cannot reach it: {folder}/bin is drwx------"),
])
def test_install_service_refuses_files_its_user_cannot_read(public_install, tmp_path, capsys, private, mode, message):
    (public_install.folder / private).chmod(mode)
    assert install(public_install, tmp_path / "root") == 2
    assert message.format(folder=public_install.folder, model=public_install.model) in one_error_line(capsys)
    assert not (tmp_path / "root").exists()


def test_install_service_checks_the_interpreter_and_venv_of_the_program(public_install, tmp_path, capsys):
    venv = public_install.folder / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_bytes(b"\x7fELF")
    (venv / "bin" / "python").chmod(0o755)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    public_install.executable.write_text(f"#!{venv}/bin/python\nfrom edge.cli import main\n")
    for path, mode, message in [(venv, 0o700, f"{venv}/bin/python: the service's user cannot reach it: {venv} is drwx------"),
                                (venv / "pyvenv.cfg", 0o600, f"{venv}/pyvenv.cfg: the service's user cannot read it")]:
        path.chmod(mode)
        assert install(public_install, tmp_path / "root") == 2
        assert message in one_error_line(capsys)
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert install(public_install, tmp_path / "root") == 0


def test_group_bits_apply_when_the_folder_belongs_to_the_service_group(public_install, tmp_path, capsys, monkeypatch):
    from edge.hearing import service

    models = public_install.folder / "models"
    monkeypatch.setattr(service, "SERVICE_GROUP", grp.getgrgid(models.stat().st_gid).gr_name)
    models.chmod(0o750)  # the service's user is in the folder's group: it may enter
    assert install(public_install, tmp_path / "root") == 0
    models.chmod(0o705)  # "others" may, but group members get the group bits
    assert install(public_install, tmp_path / "root2") == 2
    assert f"run `chmod g+x {models}`" in one_error_line(capsys)


def test_install_service_refuses_a_config_folder_its_user_cannot_enter(public_install, tmp_path, capsys):
    for folder in (tmp_path / "root", tmp_path / "root/etc"):  # / and /etc exist, enterable by all
        folder.mkdir()
        folder.chmod(0o755)
    old_umask = os.umask(0o077)  # as a hardened root shell would make /etc/tinysense: mode 0700
    try:
        assert install(public_install, tmp_path / "root") == 2
    finally:
        os.umask(old_umask)
    config_folder = tmp_path / "root/etc/tinysense"
    assert f"{config_folder} is drwx------; run `chmod o+x {config_folder}`" in one_error_line(capsys)
    assert not (tmp_path / "root/etc/systemd/system/tinysense-listen.service").exists()  # no unit for a config it cannot read


def test_install_service_refuses_a_program_that_does_not_exist(public_install, tmp_path, capsys):
    missing = public_install.folder / "bin" / "nope"
    assert main(["install-service", "--model", str(public_install.model), "--executable", str(missing),
                 "--root", str(tmp_path / "root")]) == 2
    assert f"{missing}: No such file or directory" in one_error_line(capsys)
    assert not (tmp_path / "root").exists()


def test_default_executable_is_the_running_one_then_the_one_beside_python(public_install, tmp_path, capsys, monkeypatch):
    from edge.hearing.service import default_executable

    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    beside = venv_bin / "tinysense"
    beside.write_text("#!/bin/sh\n")
    beside.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "pytest")])  # as under pytest or python -m edge
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # nothing installed on PATH
    assert default_executable() == beside.resolve()
    monkeypatch.setattr(sys, "argv", [str(public_install.executable)])
    assert default_executable() == public_install.executable.resolve()
    beside.unlink()
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "pytest")])
    assert main(["install-service", "--model", str(public_install.model), "--root", str(tmp_path / "root")]) == 2
    assert "no tinysense program found" in (line := one_error_line(capsys)) and "--executable PATH" in line
    assert not (tmp_path / "root").exists()
