"""`tinysense install-service`: install `tinysense listen` as a systemd service.

Writes a unit that runs the daemon as a dedicated unprivileged user (systemd's DynamicUser,
member of the `audio` group for the microphone), restarts it on failure, reloads it with
SIGHUP, and a TOML config next to it; both files are written atomically. A model, program or
config that user could not read (a bundle in a home folder of mode 0700) is refused in one line
with the fix, instead of a service that fails at every start. `--root` installs
into another tree (packaging, tests). Nothing here needs root except writing under /etc.
"""
from __future__ import annotations

import argparse
import json
import logging
import grp
import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

from edge.core.argtypes import non_negative_int
from edge.core.errors import InputError
from edge.core.fileio import atomic_write_text
from edge.hearing.listen import DEFAULT_MODEL

log = logging.getLogger(__name__)

UNIT_NAME = "tinysense-listen.service"
CONFIG_PATH = "/etc/tinysense/listen.toml"
SOCKET_PATH = "/run/tinysense/events.sock"
SERVICE_GROUP = "audio"  # the unit's SupplementaryGroups
#: The fixes for a model or program the service's user cannot read: places any user can read.
MOVE_MODEL = "move the model to /opt/tinysense or /var/lib/tinysense"
MOVE_PROGRAM = "install tinysense where any user can read it (e.g. a venv in /opt/tinysense)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL),
                        help=f"keyword bundle the service uses (kws, kws-embedding or a kws-cascade); made absolute "
                             f"(default: {DEFAULT_MODEL})")
    parser.add_argument("--device", default=None, help="capture device index or name (default: the default input)")
    parser.add_argument("--channel", type=non_negative_int, default=None, metavar="N",
                        help="use only this microphone channel, numbered from 0 (default: mono, or the mean of all)")
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
SupplementaryGroups={SERVICE_GROUP}
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


def config_text(model: Path, device: str | None, keywords: str | None, threshold: str | None,
                channel: int | None) -> str:
    lines = ["# tinysense listen settings: the same keys as its flags (see `tinysense listen --help`).",
             "# After editing: sudo systemctl reload tinysense-listen", f"model = {toml_string(str(model))}",
             f"socket = {toml_string(SOCKET_PATH)}"]
    if device is not None:
        lines.append(f"device = {device}" if device.isdigit() else f"device = {toml_string(device)}")
    if channel is not None:
        lines.append(f"channel = {channel}")
    if keywords:
        lines.append(f"keywords = {toml_string(keywords)}")
    if threshold:
        lines.append(f"threshold = {toml_string(threshold)}")
    lines.append('# on-detect = ["/usr/local/bin/on-wake-word", "--flag"]  # keyword in $TINYSENSE_KEYWORD')
    return "\n".join(lines) + "\n"


def default_executable() -> Path:
    """The tinysense script running now (a venv's under sudo too), else the one beside this Python
    (`python -m edge`, tests), else the one on PATH; InputError naming --executable when none exists."""
    running = Path(sys.argv[0])
    candidates = [running] if running.name == "tinysense" else []
    candidates.append(Path(sys.executable).parent / "tinysense")
    candidates.extend(Path(found) for found in [shutil.which("tinysense")] if found)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise InputError(f"no tinysense program found (looked at {', '.join(map(str, candidates))} and PATH); "
                     "name the one the service should run with --executable PATH")


def under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def check_settings(model: Path, keywords: str | None, threshold: str | None) -> None:
    """Refuse now what the daemon would refuse at every start, in a systemd restart loop."""
    from edge.hearing.listen import parse_threshold, split_words
    from edge.hearing.spotters import bundle_contents

    if not (model / "manifest.json").is_file():
        raise InputError(f"{model}: not a model bundle (no manifest.json); train and export one first")
    known = bundle_contents(model)[0]
    unknown = sorted((set(split_words(keywords) or ()) | set(parse_threshold(threshold)[1])) - set(known))
    if unknown:
        raise InputError(f"unknown keyword(s) {', '.join(map(repr, unknown))}; {model} knows {', '.join(known)}")


def service_bits(status: os.stat_result) -> tuple[str, int]:
    """The permission class ('g' or 'o') and its bits (4 read, 1 execute or enter) that the service's
    user gets on a file with this `os.stat` result.

    That user is systemd's DynamicUser: a fresh uid that owns nothing, in no group but the unit's
    SupplementaryGroups (audio). By POSIX the group bits apply when the file's group is audio, the
    "others" bits otherwise (ACLs are not read). No os.access: it answers for the installing user (root).
    """
    try:
        audio = grp.getgrnam(SERVICE_GROUP).gr_gid
    except KeyError:
        audio = None
    return ("g", (status.st_mode >> 3) & 7) if status.st_gid == audio else ("o", status.st_mode & 7)


def access_problem(path: Path, bits: int, elsewhere: str, top: Path = Path("/")) -> str | None:
    """Why the service's user could not read (`bits` 4) or run (5, or 1 for a binary) `path`, in one
    line with the fix, or None when it can.

    It must enter (x) every folder from `top` down, both along `path` as given and along the path its
    symlinks lead to, and have `bits` on the file itself. `elsewhere` ends the fix ("move the model to ...").
    """
    path, top = path.absolute(), top.absolute()
    try:
        for route in dict.fromkeys([path, path.resolve(strict=True)]):
            for folder in (p for p in reversed(route.parents) if p.is_relative_to(top)):
                status = folder.stat()
                who, granted = service_bits(status)
                if not granted & 1:
                    return (f"{path}: the service's user cannot reach it: {folder} is {stat.filemode(status.st_mode)}; "
                            f"run `chmod {who}+x {folder}`, or {elsewhere}")
        status = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}; {elsewhere}"
    who, granted = service_bits(status)
    if granted & bits != bits:
        want = "".join(letter for letter, bit in (("r", 4), ("x", 1)) if bits & bit)
        return (f"{path}: the service's user cannot {'run' if bits & 1 else 'read'} it ({stat.filemode(status.st_mode)}); "
                f"run `chmod {who}+{want} {path}`, or {elsewhere}")
    return None


def program_files(executable: Path) -> list[tuple[Path, int]]:
    """What running `executable` reads, as (path, bits): the program itself (r and x for a script,
    x for a binary), the interpreter its `#!` line names, and that interpreter's venv `pyvenv.cfg`."""
    try:
        with open(executable, "rb") as handle:
            first_line = handle.readline(4096)
    except OSError:
        return [(executable, 1)]  # access_problem names what is wrong with it
    words = first_line[2:].split() if first_line.startswith(b"#!") else []
    if not words:
        return [(executable, 1)]
    interpreter = Path(os.fsdecode(words[0]))
    venv_config = interpreter.parent.parent / "pyvenv.cfg"
    return [(executable, 5), (interpreter, 1), *([(venv_config, 4)] if venv_config.is_file() else [])]


def check_service_access(model: Path, executable: Path) -> None:
    """Refuse a model or program the service's user could not read, before any file is written: a
    bundle under a home folder of mode 0700 (Debian's default) would fail at every start."""
    from edge.hearing.spotters import bundle_contents

    needed = [*((path, 4, MOVE_MODEL) for path in bundle_contents(model)[1]),
              *((path, bits, MOVE_PROGRAM) for path, bits in program_files(executable))]
    for path, bits, elsewhere in needed:
        problem = access_problem(path, bits, elsewhere)
        if problem:
            raise InputError(problem)


def run(args: argparse.Namespace) -> int:
    model = args.model.resolve()
    check_settings(model, args.keywords, args.threshold)
    if not args.config_path.startswith("/") or not args.unit_dir.startswith("/"):
        raise InputError("--config-path and --unit-dir must be absolute paths (inside --root)")
    unit_path = under(args.root, args.unit_dir) / UNIT_NAME
    config_path = under(args.root, args.config_path)
    executable = Path(args.executable).absolute() if args.executable else default_executable()
    check_service_access(model, executable)
    try:
        if config_path.exists() and not args.force:
            log.info("keeping the existing config %s (use --force to overwrite)", config_path)
        else:
            atomic_write_text(config_path, config_text(model, args.device, args.keywords, args.threshold, args.channel))
            config_path.chmod(0o644)
        problem = access_problem(config_path, 4, "pass another --config-path", top=args.root)
        if problem:  # a folder made under a umask such as 077; no unit is written for it
            raise InputError(problem)
        atomic_write_text(unit_path, unit_text(str(executable), args.config_path, args.user))
        unit_path.chmod(0o644)
    except PermissionError as exc:
        raise InputError(f"cannot write {exc.filename}: permission denied (run with sudo, or use --root DIR)") from None
    print(f"wrote {unit_path}\nwrote {config_path}")
    if args.root == Path("/"):
        print(f"start it: sudo systemctl daemon-reload && sudo systemctl enable --now {UNIT_NAME}")
        print(f"follow it: journalctl -u {UNIT_NAME} -f")
    return 0
