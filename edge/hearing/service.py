"""`tinysense install-service`: install `tinysense listen` as a systemd service.

Writes a unit that runs the daemon as a dedicated unprivileged user (systemd's DynamicUser,
member of the `audio` group for the microphone), restarts it on failure, reloads it with
SIGHUP, and a TOML config next to it; both files are written atomically. `--root` installs
into another tree (packaging, tests). Nothing here needs root except writing under /etc.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

from edge.core.errors import InputError
from edge.core.fileio import atomic_write_text

log = logging.getLogger(__name__)

UNIT_NAME = "tinysense-listen.service"
CONFIG_PATH = "/etc/tinysense/listen.toml"
SOCKET_PATH = "/run/tinysense/events.sock"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path("models/kws"),
                        help="KWS bundle the service uses; made absolute (default: models/kws)")
    parser.add_argument("--device", default=None, help="capture device index or name (default: the default input)")
    parser.add_argument("--keywords", default=None, help="comma-separated keywords to report (default: all)")
    parser.add_argument("--threshold", default=None, help="detection threshold, e.g. 0.8 or 0.8,yes=0.9")
    parser.add_argument("--user", default="tinysense", help="dedicated user the service runs as (default: tinysense)")
    parser.add_argument("--root", type=Path, default=Path("/"), help="install under this folder instead of / (default: /)")
    parser.add_argument("--unit-dir", default="/etc/systemd/system", help="where the unit goes, under --root")
    parser.add_argument("--config-path", default=CONFIG_PATH, help=f"where the config goes, under --root (default: {CONFIG_PATH})")
    parser.add_argument("--executable", default=None,
                        help="tinysense program the unit runs (default: the one running this command)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing config (the unit is always rewritten)")


def unit_text(executable: str, config_path: str, user: str) -> str:
    command = shlex.join([executable, "listen", "--config", config_path]).replace("%", "%%")  # systemd specifiers
    return f"""# Written by `tinysense install-service`.
[Unit]
Description=tinysense wake-word listener
After=sound.target

[Service]
Type=simple
ExecStart={command}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
User={user}
DynamicUser=yes
SupplementaryGroups=audio
RuntimeDirectory=tinysense
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def toml_string(value: str) -> str:
    """A TOML basic string; JSON's escapes (backslash, quote, newline, \\uXXXX) are TOML's too."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # DEL: JSON keeps it, TOML may not


def config_text(model: Path, device: str | None, keywords: str | None, threshold: str | None) -> str:
    lines = ["# tinysense listen settings: the same keys as its flags (see `tinysense listen --help`).",
             "# After editing: sudo systemctl reload tinysense-listen", f"model = {toml_string(str(model))}",
             f"socket = {toml_string(SOCKET_PATH)}"]
    if device is not None:
        lines.append(f"device = {device}" if device.isdigit() else f"device = {toml_string(device)}")
    if keywords:
        lines.append(f"keywords = {toml_string(keywords)}")
    if threshold:
        lines.append(f"threshold = {toml_string(threshold)}")
    lines.append('# on-detect = ["/usr/local/bin/on-wake-word", "--flag"]  # keyword in $TINYSENSE_KEYWORD')
    return "\n".join(lines) + "\n"


def default_executable() -> str:
    """The tinysense script running now (a venv's under sudo too), else the one on PATH."""
    running = Path(sys.argv[0])
    if running.name == "tinysense" and running.exists():
        return str(running.resolve())
    found = shutil.which("tinysense")
    return str(Path(found).resolve()) if found else "/usr/local/bin/tinysense"


def under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def check_settings(model: Path, keywords: str | None, threshold: str | None) -> None:
    """Refuse now what the daemon would refuse at every start, in a systemd restart loop."""
    from edge.core.bundle import Bundle
    from edge.hearing.listen import parse_threshold, split_words
    from edge.hearing.speech_commands import keywords_of

    if not (model / "manifest.json").is_file():
        raise InputError(f"{model}: not a model bundle (no manifest.json); train and export one first")
    known = keywords_of(Bundle.load(model, verify=False, task="kws").labels)
    unknown = sorted((set(split_words(keywords) or ()) | set(parse_threshold(threshold)[1])) - set(known))
    if unknown:
        raise InputError(f"unknown keyword(s) {', '.join(map(repr, unknown))}; {model} knows {', '.join(known)}")


def run(args: argparse.Namespace) -> int:
    model = args.model.resolve()
    check_settings(model, args.keywords, args.threshold)
    if not args.config_path.startswith("/") or not args.unit_dir.startswith("/"):
        raise InputError("--config-path and --unit-dir must be absolute paths (inside --root)")
    unit_path = under(args.root, args.unit_dir) / UNIT_NAME
    config_path = under(args.root, args.config_path)
    executable = args.executable or default_executable()
    try:
        if config_path.exists() and not args.force:
            log.info("keeping the existing config %s (use --force to overwrite)", config_path)
        else:
            atomic_write_text(config_path, config_text(model, args.device, args.keywords, args.threshold))
            config_path.chmod(0o644)
        atomic_write_text(unit_path, unit_text(executable, args.config_path, args.user))
        unit_path.chmod(0o644)
    except PermissionError as exc:
        raise InputError(f"cannot write {exc.filename}: permission denied (run with sudo, or use --root DIR)") from None
    print(f"wrote {unit_path}\nwrote {config_path}")
    if args.root == Path("/"):
        print(f"start it: sudo systemctl daemon-reload && sudo systemctl enable --now {UNIT_NAME}")
        print(f"follow it: journalctl -u {UNIT_NAME} -f")
    return 0
