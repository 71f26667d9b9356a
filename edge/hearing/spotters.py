"""One entry point for every kind of keyword bundle: `open_spotter(path)` picks the spotter.

A bundle's task says what runs it: `kws` (a microfrontend model; `KeywordSpotter`),
`kws-embedding` (a head on the speech embedding; `EmbeddingSpotter`) and `kws-cascade` (both,
as proposer and confirmer; `CascadeSpotter`). All three have `KeywordSpotter`'s API, so `listen`,
the Wyoming server and the stream benchmark take any of them.
"""
from __future__ import annotations

from pathlib import Path

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import BundleError
from edge.core.fileio import read_json
from edge.hearing.speech_commands import keywords_of

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


def bundle_contents(path: str | Path) -> tuple[list[str], list[Path]]:
    """The keywords a keyword bundle spots and every file its spotter reads (manifests, model
    variants, feature models; a cascade's of both stages), without hashing them."""
    task = bundle_task(path)
    if task == "kws-cascade":
        from edge.hearing.cascade import load_cascade

        cascade = load_cascade(path)
        stages = [cascade.propose, cascade.confirm]
        keywords, files = keywords_of(cascade.propose.labels), [Path(path) / MANIFEST]
    else:
        stages = [Bundle.load(path, verify=False, task=task)]
        keywords, files = keywords_of(stages[0].labels), []
    for bundle in stages:
        files += [bundle.root / MANIFEST, *(bundle.variant_path(name) for name in bundle.variants),
                  *(bundle.root / entry["file"] for entry in bundle.manifest.get("assets", {}).values())]
    return keywords, files
