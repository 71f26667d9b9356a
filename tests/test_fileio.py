"""Atomic writes: readable by other users like any file, one-line errors for a bad destination."""
import os

import pytest

from edge.core.errors import OutputError
from edge.core.fileio import atomic_write_bytes


def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "sub" / "manifest.json", b"{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: a service user must read bundles
    path.chmod(0o640)
    atomic_write_bytes(path, b"{ }")
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_bytes() == b"{ }"
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temporary file left


@pytest.mark.parametrize("target", ["a_file/out.json", "."])
def test_a_destination_that_cannot_be_written_is_one_line(tmp_path, target):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write here \("):
        atomic_write_bytes(tmp_path / target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_read_json_fails_in_one_line_of_the_callers_error_class(tmp_path):
    from edge.core.errors import BundleError
    from edge.core.fileio import read_json

    (tmp_path / "ok.json").write_text('{"a": 1}')
    (tmp_path / "bad.json").write_bytes(b"{\xff")
    assert read_json(tmp_path / "ok.json", BundleError) == {"a": 1}
    with pytest.raises(BundleError, match=r"bad.json: unreadable, not valid JSON \("):
        read_json(tmp_path / "bad.json", BundleError)
    with pytest.raises(OutputError, match=r"sub: unreadable \("):  # a folder where a file should be
        (tmp_path / "sub").mkdir()
        read_json(tmp_path / "sub", OutputError)
