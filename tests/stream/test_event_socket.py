"""The local event socket: every connected subscriber gets each later event as a JSON line."""
from __future__ import annotations

import json
import socket

import pytest

from edge.core.errors import TinysenseError
from edge.hearing.event_socket import EventSocket


def connect(path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(path))
    client.settimeout(2)
    return client


def test_events_reach_every_subscriber_and_gone_ones_are_dropped(tmp_path):
    path = tmp_path / "run" / "events.sock"
    with EventSocket(path) as events:
        events.publish({"keyword": "nobody listens"})
        first, second = connect(path), connect(path)
        events.publish({"keyword": "yes", "score": 0.9})
        second.close()
        events.publish({"keyword": "no", "score": 0.8})
        events.publish({"keyword": "up", "score": 0.7})
        reader = first.makefile()
        lines = [json.loads(reader.readline()) for _ in range(3)]
        assert [e["keyword"] for e in lines] == ["yes", "no", "up"]
        assert events.subscribers == 1
        with pytest.raises(TinysenseError, match="in use"):
            EventSocket(path)
    assert not path.exists()


def test_stale_socket_is_replaced_and_other_files_are_refused(tmp_path):
    stale = tmp_path / "stale.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(stale))
    server.close()  # the file stays, nobody listens: a crashed daemon's leftover
    with EventSocket(stale):
        assert stale.exists()
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    with pytest.raises(TinysenseError, match="not a socket"):
        EventSocket(regular)
    assert regular.read_text() == "keep me"


def test_unusable_socket_paths_are_one_line_errors(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for path, reason in ((tmp_path / ("x" * 120 + ".sock"), "AF_UNIX path too long"),
                         (tmp_path / "a_file" / "s.sock", "File exists")):
        with pytest.raises(TinysenseError, match=f"cannot create event socket .*: {reason}"):
            EventSocket(path)
