"""--data speech-commands-download: the real fetch-and-check code, pointed at a local file:// archive."""
import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf

from edge.core.errors import InputError
from edge.hearing.speech_commands import load_items
from trainer.speech_commands_download import SPEECH_COMMANDS_SHA256, download_speech_commands, is_download


def wav_bytes(seed: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, np.random.default_rng(seed).integers(-3000, 3000, 16000).astype(np.int16), 16000, format="WAV",
             subtype="PCM_16")
    return out.getvalue()


def make_archive(path, members: dict[str, bytes]) -> str:
    """A .tar.gz laid out like speech_commands_v0.02.tar.gz (folders at the top); returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_extracts_checks_and_caches(tmp_path):
    members = {f"{word}/{speaker}_nohash_0.wav": wav_bytes(n) for n, (word, speaker) in
               enumerate([("yes", "aaaa1111"), ("no", "bbbb2222"), ("bed", "cccc3333"), ("yes", "dddd4444")])}
    members["_background_noise_/white_noise.wav"] = wav_bytes(9)
    members["validation_list.txt"] = b"no/bbbb2222_nohash_0.wav\n"
    members["testing_list.txt"] = b"yes/dddd4444_nohash_0.wav\n"
    archive = tmp_path / "sc.tar.gz"
    digest = make_archive(archive, members)
    folder = download_speech_commands(origin=archive.as_uri(), file_hash=digest, cache_dir=tmp_path / "cache")
    assert folder.is_dir() and str(folder).startswith(str(tmp_path / "cache"))
    assert sorted(p.name for p in (folder / "yes").iterdir()) == ["aaaa1111_nohash_0.wav", "dddd4444_nohash_0.wav"]
    items = load_items(folder, ("yes", "no"))
    assert len(items) == 4  # yes x2, no, and bed as _unknown_
    # A second call reuses the cache: the origin may be gone.
    archive.unlink()
    assert download_speech_commands(origin=archive.as_uri(), file_hash=digest, cache_dir=tmp_path / "cache") == folder


def test_wrong_hash_offline_and_wrong_layout_are_one_line(tmp_path):
    archive = tmp_path / "sc.tar.gz"
    digest = make_archive(archive, {"readme.txt": b"not speech commands"})
    with pytest.raises(InputError, match="cannot download Speech Commands from file://"):
        download_speech_commands(origin=archive.as_uri(), file_hash="0" * 64, cache_dir=tmp_path / "c1")
    with pytest.raises(InputError, match="cannot download Speech Commands from file:///nonexistent"):
        download_speech_commands(origin="file:///nonexistent/sc.tar.gz", file_hash=None, cache_dir=tmp_path / "c2")
    with pytest.raises(InputError, match="not the Speech Commands layout .missing yes, _background_noise_"):
        download_speech_commands(origin=archive.as_uri(), file_hash=digest, cache_dir=tmp_path / "c3")


def test_published_checksum_and_flag():
    assert len(SPEECH_COMMANDS_SHA256) == 64 and int(SPEECH_COMMANDS_SHA256, 16)
    assert is_download("speech-commands-download") and not is_download("data/sc") and not is_download(None)


def test_train_kws_data_speech_commands_download_uses_the_download(tmp_path, monkeypatch, capsys):
    """`train kws --data speech-commands-download` goes through the fetch (here offline: one line, exit 2)."""
    from edge.cli import main
    from trainer import kws_train

    monkeypatch.setattr(kws_train, "download_speech_commands", lambda: download_speech_commands(
        origin="file:///nonexistent/speech_commands_v0.02.tar.gz", file_hash=None, cache_dir=tmp_path / "cache"))
    assert main(["train", "kws", "--data", "speech-commands-download", "--no-synthetic", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "cannot download Speech Commands from file:///nonexistent/speech_commands_v0.02.tar.gz" in err
    assert "Traceback" not in err
