"""One entry point for every kind of keyword bundle: `open_spotter(path)` picks the spotter.

A bundle's task says what runs it: `kws` (a microfrontend model; `KeywordSpotter`),
`kws-embedding` (a head on the speech embedding; `EmbeddingSpotter`) and `kws-cascade` (both,
as proposer and confirmer; `CascadeSpotter`). All three have `KeywordSpotter`'s API, so `listen`,
the Wyoming server and the stream benchmark take any of them.
"""
from __future__ import annotations

from pathlib import Path

from edge.core.bundle import MANIFEST
from edge.core.errors import BundleError
from edge.core.fileio import read_json

KEYWORD_TASKS = ("kws", "kws-embedding", "kws-cascade")


def bundle_task(path: str | Path) -> str:
    """The task a bundle folder's manifest names; BundleError when it is not a keyword bundle."""
    root = Path(path)
    manifest = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"{root}: no such model bundle folder")
    if not manifest.is_file():
        raise BundleError(f"{manifest}: missing; is {root} an exported bundle? (run: tinysense export {root})")
    task = read_json(manifest, BundleError).get("task")
    if task not in KEYWORD_TASKS:
        raise BundleError(f"{manifest}: a {task!r} bundle; keyword spotting needs one of {', '.join(KEYWORD_TASKS)}")
    return task


def open_spotter(path: str | Path, **options):
    """A streaming spotter for the keyword bundle at `path`; `options` as `KeywordSpotter.from_bundle`
    (variant, keywords, threads and detection overrides; None = the manifest's)."""
    task = bundle_task(path)
    if task == "kws":
        from edge.hearing.spotter import KeywordSpotter

        return KeywordSpotter.from_bundle(path, **options)
    if task == "kws-embedding":
        from edge.hearing.embedding_spotter import EmbeddingSpotter

        return EmbeddingSpotter.from_bundle(path, **options)
    from edge.hearing.cascade import CascadeSpotter

    return CascadeSpotter.from_bundle(path, **options)
