"""Where data sets live, and clear errors when they don't.

Resolution order for the data root:

1. an explicit root (``--data-root``), alone when given;
2. the environment variable ``PAPERLAB_DATA``;
3. ``../shared/data`` beside the repository (the staged copy on the project's machines);
4. ``~/.cache/paperlab/data`` (where online loaders download to).

Data sets under ``shared/`` are read-only: :func:`writable_copy` copies one to the cache
before a library (e.g. a PyG ``InMemoryDataset``) writes ``processed/`` files next to it.

A missing file fails with :class:`DataNotFoundError` naming every place looked and the
``paperlab data fetch`` command that downloads it (:func:`fetch_hint`, from the manifest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from paperlab.core import manifest

ENV_DATA = "PAPERLAB_DATA"
ENV_CACHE = "PAPERLAB_CACHE"
REPO_ROOT = Path(__file__).resolve().parents[2]


class DataNotFoundError(FileNotFoundError):
    """A data file is missing; the message names every place looked and how to get it."""


def cache_dir() -> Path:
    """Writable cache (``$PAPERLAB_CACHE`` or ``~/.cache/paperlab``); created on demand."""
    path = Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "paperlab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(fields: Mapping[str, Any]) -> str:
    """16 hex digits naming a cached artefact: an 8-byte BLAKE2b of ``fields`` as JSON with
    sorted keys (so a key depends on the values, not on the order they were written in)."""
    return hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=8).hexdigest()


def key_fields(cfg: Any, added_later: Mapping[str, Any]) -> dict[str, Any]:
    """A config dataclass's fields for :func:`cache_key`, without each field of ``added_later``
    (name -> the behaviour artefacts had before it existed) that holds that value: artefacts
    cached before a field was added keep their keys."""
    fields = dataclasses.asdict(cfg)
    for name, before in added_later.items():
        if fields[name] == before:
            del fields[name]
    return fields


def candidate_roots(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The data roots searched, in order (only ``explicit`` when it is given)."""
    if explicit is not None:
        return [Path(explicit).expanduser()]
    roots = []
    if os.environ.get(ENV_DATA):
        roots.append(Path(os.environ[ENV_DATA]).expanduser())
    roots.append((REPO_ROOT.parent / "shared" / "data").resolve())
    roots.append(Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "paperlab")) / "data")
    return roots


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first existing candidate root (or the last candidate, the cache, if none exists)."""
    roots = candidate_roots(explicit)
    for root in roots:
        if root.is_dir():
            return root
    return roots[-1]


GETTING_THE_DATA = 'the README\'s "Getting the data"'


def fetch_hint(relpath: str | os.PathLike[str]) -> str:
    """The sentence that tells a user how to get ``relpath`` (a file or folder under the data
    root): the ``paperlab data fetch`` command of the systems whose manifest entries lie at,
    under or above it, or how to make it when it cannot be downloaded."""
    rel = PurePosixPath(relpath).as_posix().strip("/")
    entries = [e for e in manifest.ENTRIES
               if e.path == rel or e.path.startswith(rel + "/") or rel.startswith(e.path + "/")]
    if entries and all(e.via == "manual" for e in entries):
        note = entries[0].note
        return f"{note[:1].upper()}{note[1:]}."
    systems = sorted({s for e in entries for s in e.systems})
    if len(systems) == 1:
        command = f"`paperlab data fetch {systems[0]}` downloads it"
    elif systems:
        command = (f"`paperlab data fetch SYSTEM` downloads it, SYSTEM one of "
                   f"{', '.join(systems)}")
    elif entries:
        command = f"`paperlab data fetch {entries[0].area}` downloads it"
    else:  # not in the manifest (tests/core/test_data_groups.py keeps the systems' data in)
        return f"See {GETTING_THE_DATA}."
    return f"{command} (see {GETTING_THE_DATA})."


def require(
    relpath: str | os.PathLike[str],
    how_to_get: str,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Return ``<root>/<relpath>`` for the first candidate root that has it.

    Args:
        relpath: path of a file or folder relative to the data root, e.g. ``"graphs/planetoid"``.
        how_to_get: one sentence describing the data to a user (what it is, where it goes);
            the command that downloads it (:func:`fetch_hint`) is added to the error.
        root: an explicit data root (``--data-root``); only that root is searched when given.

    Raises:
        DataNotFoundError: naming every path looked at, ``how_to_get`` and the fetch command.
    """
    tried = [r / relpath for r in candidate_roots(root)]
    for path in tried:
        if path.exists():
            return path
    places = ", ".join(str(p) for p in tried)
    raise DataNotFoundError(f"missing data '{relpath}': looked in {places}. {how_to_get} "
                            f"{fetch_hint(relpath)}")


def writable_copy(src: str | os.PathLike[str], name: str) -> Path:
    """Copy a (possibly read-only) data folder to ``<cache>/copies/<name>`` once and return it.

    The copy is made in a temporary folder and renamed into place, so an interrupted copy
    never looks complete. Files are made user-writable so libraries can add ``processed/``.
    """
    src = Path(src)
    dest = cache_dir() / "copies" / name
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
    try:
        staged = tmp / "data"
        shutil.copytree(src, staged, copy_function=shutil.copyfile)
        for folder, _, files in os.walk(staged):
            os.chmod(folder, 0o755)
            for f in files:
                os.chmod(os.path.join(folder, f), 0o644)
        try:
            os.replace(staged, dest)
        except OSError:  # another process won the race; use its copy
            if not dest.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
