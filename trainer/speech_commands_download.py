"""`--data speech-commands-download`: the Speech Commands v0.02 archive, fetched once and checked.

With internet (and ideally a GPU), `tinysense train kws --data speech-commands-download` trains on
the full data set (105,829 clips, 2,618 speakers; Warden 2018, arXiv:1804.03209, CC BY 4.0) and
reproduces the full-data figures with one command. The archive is fetched by Keras' `get_file`
with its published sha256 (the value TensorFlow Datasets and others check against), extracted
into the Keras cache (`~/.keras/datasets/speech_commands_v0_extracted/` by default) and reused on
every later run. Nothing else in tinysense downloads, and tests point `origin` at a local
`file://` archive.
"""
from __future__ import annotations

import logging
from pathlib import Path

from edge.core.errors import InputError

log = logging.getLogger(__name__)

DOWNLOAD = "speech-commands-download"
SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
#: what an extracted archive must hold to be the Speech Commands layout
REQUIRED = ("yes", "_background_noise_", "validation_list.txt", "testing_list.txt")


def is_download(data: str | Path | None) -> bool:
    return data is not None and str(data) == DOWNLOAD


def download_speech_commands(origin: str = SPEECH_COMMANDS_URL, file_hash: str | None = SPEECH_COMMANDS_SHA256,
                             cache_dir: str | Path | None = None) -> Path:
    """The extracted Speech Commands folder (word folders, `_background_noise_/`, the split lists).

    Downloads and checks `origin` against `file_hash` (sha256) on first use, then only extracts
    or reuses the cache. Raises InputError (one line) when the fetch fails (offline, 404, wrong
    hash) or the archive is not in the Speech Commands layout.
    """
    import keras

    if cache_dir is not None:  # get_file silently falls back to /tmp/.keras when the folder is missing
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    log.info("Speech Commands v0.02: fetching or reusing %s (2.3 GB the first time)", origin)
    try:
        folder = Path(keras.utils.get_file("speech_commands_v0.02.tar.gz", origin=origin, file_hash=file_hash,
                                           cache_dir=None if cache_dir is None else str(cache_dir), extract=True))
    except Exception as exc:  # Keras raises a bare Exception for a failed fetch (offline, 404, bad hash)
        raise InputError(f"cannot download Speech Commands from {origin} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         "use --data DIR with an extracted copy instead") from None
    missing = [name for name in REQUIRED if not (folder / name).exists()]
    if missing:
        raise InputError(f"{folder}: not the Speech Commands layout (missing {', '.join(missing)}); "
                         f"remove it and run again, or use --data DIR")
    return folder
