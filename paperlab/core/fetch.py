"""Download, regenerate and verify the data sets listed in :mod:`paperlab.core.manifest`.

:func:`download` is the one HTTP(S) transfer: it writes ``<dest>.part``, resumes a partial file
with an HTTP ``Range`` request, retries transient failures with exponential backoff, checks the
pinned SHA-256 (or a library's pinned MD5) and only then renames the file into place, so a
partial or corrupt download never looks complete. A file failing its check is removed. A
folder (the CIFAR-10 JPEGs) is collected in ``<folder>.part/`` from a repository archive and
renamed into place once its tree hash matches.

:func:`fetch` obtains what a selection of entries needs into one data root (the user data root
``~/.cache/paperlab/data`` unless ``root`` is given), skipping everything already present in a
searched data root (so the staged ``../shared/data`` still wins); :func:`verify` checks a data
root against the pins and says what is missing or altered.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import hashlib
import http.client
import importlib
import logging
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

from paperlab.core import manifest, progress
from paperlab.core.data import cache_dir, candidate_roots
from paperlab.core.manifest import Entry

log = logging.getLogger(__name__)

CHUNK = 1 << 16
ENV_MIRROR = "PAPERLAB_DATA_MIRROR"
USER_AGENT = "paperlab-fetch/1"


class FetchError(RuntimeError):
    """A download or generation failed; the message names the file and the URL."""


class OfflineError(FetchError):
    """The host cannot be reached at all (no network, DNS failure, connection refused)."""


class ChecksumError(FetchError):
    """A file did not match its pinned hash; it has been removed."""


class _Transient(Exception):
    """A failure worth retrying (connection reset, timeout, short body, HTTP 5xx/429)."""


# ---------------------------------------------------------------------------------- hashing


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algorithm``: any :mod:`hashlib` name)."""
    h = hashlib.new(algorithm, usedforsecurity=algorithm != "md5")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gunzip_md5(path: str | os.PathLike[str]) -> str:
    """MD5 of a gzip file's decompressed content (identifies MNIST whatever the wrapper)."""
    h = hashlib.md5(usedforsecurity=False)
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 of a folder as ``PROVENANCE.md`` computes it, run in the folder's parent:
    ``find NAME -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum``, i.e. the
    hash of the lines ``<sha256 of file>  <parent name>/<NAME>/<relative path>`` in byte order
    of the paths (the parent's own name is part of each path, as in the staged pins)."""
    folder = Path(folder)
    base = folder.parent.parent
    paths = sorted((p.relative_to(base).as_posix() for p in folder.rglob("*") if p.is_file()),
                   key=os.fsencode)
    h = hashlib.sha256()
    for rel in paths:
        h.update(f"{file_digest(base / rel)}  {rel}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------- download


def _unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the host cannot be reached at all (rather than a flaky link)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH,
                                                            errno.EHOSTUNREACH)


@contextmanager
def _bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A byte-counting progress bar on stderr (a no-op off a terminal)."""
    if not progress.enabled():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _transfer(url: str, part: Path, timeout_s: float, size: int | None) -> None:
    """One attempt: fetch ``url`` into ``part``, resuming from its current length."""
    have = part.stat().st_size if part.exists() else 0
    if size and have == size:
        return  # a previous attempt got every byte; the checksum decides
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 (http/s only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our partial file is longer than the resource
            part.unlink()
            raise _Transient(f"HTTP 416 on resume at byte {have}") from exc
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code}") from exc
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    with response:
        if have and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {have}-"):
                part.unlink()
                raise _Transient(f"unexpected Content-Range {content_range!r}")
            mode = "ab"
        else:  # 200: the server sent the whole file
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length is not None else size
        got = have
        with _bar(Path(urlsplit(url).path).name, expected) as advance, open(part, mode) as f:
            advance(have)
            while block := response.read(CHUNK):
                f.write(block)
                got += len(block)
                advance(len(block))
    if length is not None and got < expected:
        raise _Transient(f"connection closed after {got} of {expected} bytes")


def download(url: str, dest: str | os.PathLike[str], sha256: str = "", size: int = 0, *,
             md5: str = "", retries: int = 4, backoff_s: float = 1.0,
             timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, check it, rename it into place.

    Args:
        url: an ``http://`` or ``https://`` URL.
        dest: final path; its folder is created.
        sha256: pinned hex SHA-256 of the file ("" = no check); ``md5`` likewise (for
            pins a library made in MD5).
        size: expected bytes (0 = unknown); a complete ``.part`` is not fetched again.
        retries: further attempts after a transient failure (timeout, reset connection,
            short body, HTTP 5xx/429), each resuming the ``.part`` file with an HTTP Range
            request; waits ``backoff_s * 2**attempt`` seconds in between.
        timeout_s: socket timeout per attempt, in seconds.

    Raises:
        OfflineError: the host cannot be reached (no network); the ``.part`` file is kept.
        ChecksumError: the bytes do not match ``sha256``/``md5``/``size``; the file is removed.
        FetchError: HTTP 4xx, or still failing after ``retries`` retries.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"only http(s) URLs are fetched, got {url!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout_s, size or None)
            break
        except FetchError:
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException, _Transient) as exc:
            if _unreachable(exc):
                host = urlsplit(url).hostname
                raise OfflineError(f"cannot reach {host} ({exc}); is this machine online?") \
                    from exc
            if attempt == retries:
                raise FetchError(f"{url}: gave up after {retries + 1} attempts: {exc}") from exc
            wait = backoff_s * 2**attempt
            log.warning("%s: %s; retrying in %.1f s (resuming)", url, exc, wait)
            time.sleep(wait)
    _check_or_remove(part, url, sha256=sha256, md5=md5, size=size)
    os.replace(part, dest)
    return dest


def _check_or_remove(path: Path, what: str, sha256: str = "", md5: str = "",
                     size: int = 0) -> None:
    """Raise :class:`ChecksumError` (after deleting ``path``) unless it matches the pins."""
    problems = []
    if size and path.stat().st_size != size:
        problems.append(f"{path.stat().st_size} bytes, expected {size}")
    for algorithm, pinned in (("sha256", sha256), ("md5", md5)):
        if pinned and not problems:
            got = file_digest(path, algorithm)
            if got != pinned:
                problems.append(f"{algorithm} {got}, expected {pinned}")
    if problems:
        path.unlink()
        raise ChecksumError(f"{what}: {'; '.join(problems)}; the file was removed")


# -------------------------------------------------------------------------- the manifest


def _by_path(path: str) -> Entry:
    """The manifest entry at ``path``."""
    for entry in manifest.ENTRIES:
        if entry.path == path:
            return entry
    raise KeyError(f"no manifest entry for {path!r}")


def select(names: Sequence[str] = ()) -> list[Entry]:
    """The manifest entries for ``names`` (areas, systems or ``"all"``).

    No names: what the systems read (entries naming at least one system).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    areas = sorted({e.area for e in manifest.ENTRIES})
    systems = sorted({s for e in manifest.ENTRIES for s in e.systems})
    unknown = [n for n in names if n not in {*areas, *systems, "all"}]
    if unknown:
        raise ValueError(f"unknown data set group {', '.join(map(repr, unknown))}; "
                         f"choose areas {', '.join(areas)}, systems {', '.join(systems)} "
                         "or 'all'")
    return [e for e in manifest.ENTRIES
            if ("all" in names or e.area in names or set(e.systems) & set(names)
                or (not names and e.systems))]


def user_root() -> Path:
    """Where fetched data go by default: ``$PAPERLAB_CACHE/data`` (``~/.cache/paperlab/data``)."""
    return candidate_roots()[-1]


def locate(entry: Entry, root: str | os.PathLike[str] | None = None) -> Path | None:
    """The entry's file in the first searched data root that has it (only ``root`` if given)."""
    for base in candidate_roots(root):
        path = base / entry.path
        if path.exists():
            return path
    return None


@dataclass(frozen=True)
class Status:
    """What :func:`verify` or :func:`fetch` found for one entry.

    ``state``: ``ok`` (matches its pin), ``unchecked`` (present, nothing pinned), ``missing``,
    ``altered`` (present but not matching), ``present`` (fetch: already there, not re-hashed),
    ``fetched``, ``generated``, ``manual`` (missing and not downloadable; ``detail`` says how
    to make it).
    """

    entry: Entry
    state: str
    path: Path | None = None
    detail: str = ""


def check(entry: Entry, path: Path) -> Status:
    """Check one present file or folder against the entry's pin."""
    if entry.check == "present":
        return Status(entry, "unchecked", path, entry.note)
    if entry.check == "torchvision":
        bad = _torchvision_cifar_problems(path)
        return Status(entry, "altered" if bad else "ok", path, "; ".join(bad))
    if entry.check == "tree-sha256":
        got = tree_sha256(path)
    elif entry.check == "gunzip-md5":
        try:
            got = gunzip_md5(path)
        except (OSError, EOFError) as exc:
            return Status(entry, "altered", path, f"not a readable gzip file: {exc}")
    else:
        if entry.size and path.stat().st_size != entry.size:
            return Status(entry, "altered", path,
                          f"{path.stat().st_size} bytes, expected {entry.size}")
        got = file_digest(path)
    if got != entry.digest:
        return Status(entry, "altered", path, f"{entry.check} {got}, expected {entry.digest}")
    return Status(entry, "ok", path)


def verify(entries: Iterable[Entry], root: str | os.PathLike[str] | None = None) -> list[Status]:
    """Check every entry where the loaders would find it (only in ``root`` when given).

    A missing entry that cannot be downloaded is ``manual`` (its note says how to make it),
    any other missing entry ``missing``.
    """
    entries = list(entries)
    out = []
    for entry in progress.track(entries, "verifying", total=len(entries)):
        path = locate(entry, root)
        if path is not None:
            out.append(check(entry, path))
        else:
            out.append(Status(entry, "manual" if entry.via == "manual" else "missing", None,
                              entry.note))
    return out


# ------------------------------------------------------------------------------ fetching


def fetch(entries: Iterable[Entry], root: str | os.PathLike[str] | None = None, *,
          retries: int = 4, backoff_s: float = 1.0, timeout_s: float = 60.0,
          mirror: str | None = None) -> list[Status]:
    """Obtain every entry that no searched data root has yet, into ``root`` (default
    :func:`user_root`): downloads first, then folders from archives and library downloads,
    then generated files (which read the downloaded ones).

    ``mirror`` (default ``$PAPERLAB_DATA_MIRROR``): an HTTP(S) URL laid out like a data root
    (e.g. a data folder served by a web server); downloads then come from
    ``<mirror>/<entry path>`` instead of the upstream repositories and libraries (but for the
    CIFAR-10 python batches, which torchvision downloads), with the same pins.

    Raises:
        OfflineError: something is missing and its host cannot be reached.
        ChecksumError, FetchError: see :func:`download`.
    """
    target = Path(root).expanduser() if root is not None else user_root()
    mirror = mirror or os.environ.get(ENV_MIRROR) or None
    mirror = mirror.rstrip("/") if mirror else None
    kw = {"retries": retries, "backoff_s": backoff_s, "timeout_s": timeout_s}
    order = {"url": 0, "generate": 2, "manual": 3}
    entries = sorted(entries, key=lambda e: order.get(e.via, 1))
    done: list[Status] = []
    for entry in entries:
        if (path := locate(entry, root)) is not None:
            done.append(Status(entry, "present", path))
            continue
        dest = target / entry.path
        # a mirror serves every file as it lies in a data root, a library's files included
        if entry.via == "url" or (mirror and entry.via in _LIBRARY
                                  and entry.check != "torchvision"):
            log.info("downloading %s", entry.path)
            url = f"{mirror}/{quote(entry.path)}" if mirror else entry.url
            download(url, dest, entry.digest if entry.check == "sha256" else "", entry.size, **kw)
            if entry.check != "sha256" and (status := check(entry, dest)).state == "altered":
                dest.unlink()
                raise ChecksumError(f"{url}: {status.detail}; the file was removed")
            state = "fetched"
        elif entry.via == "archive":
            _fetch_tree(entry, target, mirror, root, **kw)
            state = "fetched"
        elif entry.via == "generate":
            _generate(entry, dest, root)
            state = "generated"
        elif entry.via in _LIBRARY:
            _LIBRARY[entry.via](dest, **kw)
            state = "fetched"
        else:
            done.append(Status(entry, "manual", None, entry.note))
            continue
        done.append(Status(entry, state, dest))
    return done


def missing(entries: Iterable[Entry], root: str | os.PathLike[str] | None = None) -> list[Entry]:
    """Entries that no searched root has and that :func:`fetch` can download."""
    return [e for e in entries if e.via != "manual" and locate(e, root) is None]


def _generate(entry: Entry, dest: Path, root: str | os.PathLike[str] | None) -> None:
    """Regenerate a Splitwise request trace from the Azure code trace, then check its pin.

    The generator is named in the entry as ``"module:function"`` (core imports no system by
    module, only by name, as the registry does).
    """
    source_entry = _by_path("splitwise/azure_llm_2023/AzureLLMInferenceTrace_code.csv")
    source = locate(source_entry, root)
    if source is None:
        source = locate(source_entry, dest.parents[2])  # fetched into the target just now
    if source is None:
        raise FetchError(f"{entry.path}: needs {source_entry.path}; fetch 'splitwise' first")
    p = dict(entry.params)
    module, _, function = str(p["generator"]).partition(":")
    generate = getattr(importlib.import_module(module), function)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    generate(source, part, float(p["rate"]), float(p["duration_s"]), seed=int(p["seed"]),
             max_requests=int(p["max_requests"]))
    _check_or_remove(part, f"regenerated {entry.path}", sha256=entry.digest, size=entry.size)
    os.replace(part, dest)


def _fetch_tree(entry: Entry, target: Path, mirror: str | None,
                root: str | os.PathLike[str] | None, **kw: float) -> None:
    """An ``archive`` entry into ``target``: its files (:func:`~paperlab.core.manifest.tree_files`)
    collected in ``<folder>.part/`` beside it, from ``<mirror>/<entry path>/<file>`` one by
    one (a rerun skips the files already there) or else from the repository's archive; renamed
    into place only when the folder's hash matches the pin.

    Raises:
        ChecksumError: the folder does not match its pin (``.part`` and archive are removed).
        FetchError: the archive is truncated or not a gzip tar (it is removed).
    """
    dest = target / entry.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    files = manifest.tree_files(entry)
    if mirror:
        for rel in progress.track(files, f"{entry.path} from the mirror", total=len(files)):
            if not (part / rel).exists():
                with progress.hidden():
                    download(f"{mirror}/{quote(entry.path)}/{quote(rel)}", part / rel, **kw)
    else:
        archive = _downloads_dir() / (Path(urlsplit(entry.url).path).name + ".tar.gz")
        if not archive.exists():
            log.info("downloading %s", entry.url)
            download(entry.url, archive, **kw)
        _extract(archive, str(dict(entry.params)["folder"]), set(files), part)
    # the tree hash names the folder's parent, so hash the files under that name
    staged = Path(tempfile.mkdtemp(prefix=".tree-", dir=dest.parent)) / dest.parent.name
    try:
        staged.mkdir()
        os.replace(part, staged / dest.name)
        got = tree_sha256(staged / dest.name)
        if got != entry.digest:
            if not mirror:
                archive.unlink()
            raise ChecksumError(f"{entry.path}: tree-sha256 {got}, expected {entry.digest}; "
                                "the files were removed")
        os.replace(staged / dest.name, dest)
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)
    if not mirror and all(locate(e, root) for e in manifest.ENTRIES
                          if e.via == "archive" and e.url == entry.url):
        archive.unlink()  # every folder it holds is in place (here or in another data root)


def _extract(archive: Path, folder: str, wanted: set[str], part: Path) -> None:
    """Write the members ``<top>/<folder>/<f>`` of a gzip tar with ``f`` in ``wanted`` to
    ``part/<f>`` (read as a stream; nothing else is written, whatever the member names)."""
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                _, _, rest = member.name.partition("/")
                if not member.isfile() or not rest.startswith(folder + "/"):
                    continue
                rel = rest[len(folder) + 1:]
                if rel in wanted:
                    out = part / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(out, "wb") as f:
                        shutil.copyfileobj(src, f)
    except (tarfile.TarError, EOFError) as exc:
        archive.unlink(missing_ok=True)
        shutil.rmtree(part, ignore_errors=True)
        raise FetchError(f"{archive}: not a complete gzip tar ({exc}); it was removed, run "
                         "the command again") from exc


def _downloads_dir() -> Path:
    """Where archives wait between attempts (so a resumed fetch reuses their ``.part``)."""
    path = cache_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _torchvision_cifar_problems(folder: Path) -> list[str]:
    """The CIFAR-10 batch files missing from ``folder`` or not matching torchvision's MD5s."""
    from torchvision.datasets import CIFAR10

    bad = []
    for name, md5 in CIFAR10.train_list + CIFAR10.test_list:
        path = folder / name
        if not path.is_file():
            bad.append(f"{name} missing")
        elif file_digest(path, "md5") != md5:
            bad.append(f"{name} does not match torchvision's md5 {md5}")
    return bad


def _fetch_cifar10(dest: Path, **kw: float) -> None:
    """CIFAR-10 python batches from torchvision's URL and MD5, extracted atomically."""
    from torchvision.datasets import CIFAR10

    archive = download(CIFAR10.url, _downloads_dir() / CIFAR10.filename, md5=CIFAR10.tgz_md5,
                       **kw)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cifar10-", dir=dest.parent) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        extracted = Path(tmp) / CIFAR10.base_folder
        bad = _torchvision_cifar_problems(extracted)
        if bad:
            raise ChecksumError(f"{archive}: {'; '.join(bad)}")
        os.replace(extracted, dest)
    archive.unlink()


def _fetch_mnist(dest: Path, **kw: float) -> None:
    """All four MNIST files from torchvision's mirrors and MD5s into ``dest``'s folder."""
    from torchvision.datasets import MNIST

    for filename, md5 in MNIST.resources:
        target = dest.parent / filename
        if target.exists():
            continue
        errors = []
        for mirror in MNIST.mirrors:
            try:
                download(f"{mirror}{filename}", target, md5=md5, **kw)
                break
            except (OfflineError, FetchError) as exc:
                errors.append(str(exc))
        else:
            raise FetchError(f"MNIST {filename}: every mirror failed: {' | '.join(errors)}")


def _fetch_wordnet(dest: Path, **_: float) -> None:
    """WordNet through NLTK's downloader (which checks NLTK's own MD5), moved into place."""
    import nltk

    with tempfile.TemporaryDirectory(prefix=".nltk-", dir=_downloads_dir()) as tmp:
        try:
            ok = nltk.download("wordnet", download_dir=tmp, quiet=True, raise_on_error=True)
        except Exception as exc:  # nltk raises bare ValueError/URLError/OSError
            raise FetchError(f"nltk.download('wordnet') failed: {exc}") from exc
        if not ok:
            raise FetchError("nltk.download('wordnet') failed")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        shutil.move(str(Path(tmp) / "corpora" / "wordnet.zip"), part)
        os.replace(part, dest)


_LIBRARY: dict[str, Callable[..., None]] = {
    "torchvision:CIFAR10": _fetch_cifar10,
    "torchvision:MNIST": _fetch_mnist,
    "nltk:wordnet": _fetch_wordnet,
}


# --------------------------------------------------------------- CIFAR-10 python batches

CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCHES = ("test_batch",)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds: the builtin dict/list/bytes/str/int opcodes
    (which never call ``find_class``) and NumPy's ndarray reconstruction; any other global
    (``os.system``, ``builtins.eval``, ...) is refused before it is looked up."""

    # NumPy's own reconstruct function, whichever module it lives in (numpy.core/_core)
    _RECONSTRUCT = np.zeros(1).__reduce__()[0]
    _ALLOWED: dict[tuple[str, str], object] = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        return self._ALLOWED[module, name]


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch (as torchvision downloads it) without trusting the pickle.

    Returns:
        ``images`` uint8 ``(N, 3, 32, 32)`` and ``labels`` int64 ``(N,)`` in ``0..9``.

    Raises:
        ValueError: the file is not a CIFAR-10 batch, or its pickle names a global other than
            NumPy's array reconstruction (nothing it names is ever called).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be a uint8 array (N, 3072)")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0
                                                             or labels.max() > 9)):
        raise ValueError(f"{path}: 'labels' must be {data.shape[0]} integers in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_python(folder: str | os.PathLike[str],
                      split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """A split (``"train"``: data_batch_1..5, ``"test"``: test_batch) of ``cifar-10-batches-py``,
    concatenated in file order: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``."""
    names = {"train": CIFAR_TRAIN_BATCHES, "test": CIFAR_TEST_BATCHES}.get(split)
    if names is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    parts = [read_cifar_batch(Path(folder) / name) for name in names]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
