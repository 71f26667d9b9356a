"""Fixtures of the streaming tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def daemon_bundle(tmp_path_factory):
    """A yes/no spotter sure of one synthetic voice (see tests/stream/daemon_bundle.py)."""
    from tests.stream.daemon_bundle import build_daemon_bundle

    return build_daemon_bundle(tmp_path_factory.mktemp("daemon-kws"))



@pytest.fixture(scope="session")
def cascade_bundle(tmp_path_factory, daemon_bundle):
    """The daemon's yes/no spotter proposing, a speech-embedding head on the same voice confirming."""
    from tests.stream.cascade_bundle import build_cascade_bundle

    return build_cascade_bundle(tmp_path_factory.mktemp("cascade"), daemon_bundle)
