"""Atomic writes (a reader never sees a half-written file, a crash leaves the old one), and
JSON reads that fail in one line."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from edge.core.errors import OutputError


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    The file gets the mode a plain `open` would give it (0666 less the umask, or the mode of the
    file it replaces), not mkstemp's 0600: a model bundle written by one user must stay readable
    by the service user that runs it. `durable=False` skips the fsync: readers still never see a
    half-written file, but a power cut may lose it. For per-frame output, where an fsync per frame
    would stall an SD card. An OSError becomes a one-line OutputError naming the path.
    """
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:  # failed or interrupted before the rename
            Path(tmp).unlink(missing_ok=True)
    return path


def file_mode(path: Path) -> int:
    """The permission bits of the file at `path`, or those a new file gets under the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays) -> Path:
    """np.savez_compressed through a temporary file (numpy itself writes in place)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_json(path: str | os.PathLike, error: type[Exception]):
    """A JSON file's content; `error` (one line naming the file) when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: unreadable ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable, not valid JSON ({exc})") from None


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
