"""A local Unix socket that streams detection events, one JSON object per line, to every
connected client (e.g. `socat - UNIX-CONNECT:/run/tinysense/events.sock`).

Clients only listen; one that stops reading or disconnects is dropped, never waited for, so
a stuck subscriber cannot stall the audio loop. Pending connections are accepted right before
each event is sent (no thread): a client that has connected gets every later event.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path

from edge.core.errors import TinysenseError

log = logging.getLogger(__name__)

SEND_TIMEOUT = 0.2  #: seconds a client gets to take one event before it is dropped


class EventSocket:
    """Listening Unix stream socket at `path`; `publish()` fans an event out to the subscribers."""

    def __init__(self, path: str | Path, mode: int = 0o660):
        self.path = Path(path)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise TinysenseError(f"event socket path {self.path} exists and is not a socket")
            if _is_live(self.path):
                raise TinysenseError(f"event socket {self.path} is in use by another process")
            self.path.unlink()  # stale socket from a crashed run
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TinysenseError(f"cannot create event socket {self.path}: {exc.strerror or exc}") from None
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._server.bind(str(self.path))
        except OSError as exc:  # strerror is None for "AF_UNIX path too long" (over 107 bytes)
            self._server.close()
            raise TinysenseError(f"cannot create event socket {self.path}: {exc.strerror or exc}") from None
        os.chmod(self.path, mode)
        self._server.listen(64)
        self._server.setblocking(False)
        self._clients: list[socket.socket] = []
        log.info("event socket listening at %s", self.path)

    def _accept_pending(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            client.settimeout(SEND_TIMEOUT)
            self._clients.append(client)
            log.debug("event socket: subscriber connected (%d now)", len(self._clients))

    @property
    def subscribers(self) -> int:
        self._accept_pending()
        return len(self._clients)

    def publish(self, event: dict) -> None:
        """Send one event to every subscriber; drop those that fail."""
        self._accept_pending()
        line = (json.dumps(event) + "\n").encode("utf-8")
        for client in list(self._clients):
            try:
                client.sendall(line)
            except OSError:
                self._clients.remove(client)
                client.close()
                log.info("event socket: dropped a subscriber (%d left)", len(self._clients))

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "EventSocket":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False
