"""``paperlab entropic-student encode|decode|serve`` on image files the tests write, with a tiny
untrained student saved by ``save_student``: round trips against the API, bad input, the cache
lookup and the socket server."""

from __future__ import annotations

import csv
import json
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paperlab import cli
from paperlab.core.data import DataNotFoundError
from paperlab.core.seed import torch_threads
from paperlab.entropic_student.cli import decode_files, read_photo
from paperlab.entropic_student.codec import BitstreamError
from paperlab.entropic_student.model import (
    EntropicStudent,
    decode_and_classify,
    encode,
    save_student,
)
from paperlab.entropic_student.serve import SplitClient
from paperlab.vision.data import CLASSES, cifar10_dir
from paperlab.vision.train import QUICK_CIFAR_TEACHER

ES = "entropic-student"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[EntropicStudent, Path]:
    """An untrained student and its file; its latent is scaled up so that rounding keeps the
    images apart (seed 2: it gives these images different labels)."""
    with torch_threads(1):
        torch.manual_seed(2)
        student = EntropicStudent(QUICK_CIFAR_TEACHER.build(), b=8).eval()
        with torch.no_grad():
            student.encoder[-1].weight.mul_(30)
        student.bottleneck.update()
    path = tmp_path_factory.mktemp("model") / "student.pt"
    save_student(student, path)
    return student, path


@pytest.fixture
def photos(tmp_path) -> tuple[list[Path], torch.Tensor]:
    """Two 32x32 PNGs (lossless: their pixels are the tensor's), a 32x32 JPEG and a 96x64 PNG;
    the files and the PNGs' pixels ``(2, 3, 32, 32)``."""
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen)
    pixels[:2] //= 4
    folder = tmp_path / "photos"
    folder.mkdir()
    files = []
    for i, suffix in enumerate((".png", ".png", ".jpg")):
        files.append(folder / f"img{i}{suffix}")
        Image.fromarray(pixels[i].permute(1, 2, 0).numpy()).save(files[-1])
    big = np.kron(pixels[3].permute(1, 2, 0).numpy(), np.ones((2, 3, 1), dtype=np.uint8))
    files.append(folder / "big.png")
    Image.fromarray(big).save(files[-1])  # 96 wide, 64 high
    return files, pixels[:2]


def run(*args: object) -> int:
    return cli.main([ES, *map(str, args)])


def printed_labels(out: str) -> dict[str, int]:
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert all(len(r) == 3 and r[2] == CLASSES[int(r[1])] for r in rows)
    return {Path(r[0]).name: int(r[1]) for r in rows}


def test_encode_decode_round_trip_gives_the_api_labels(tiny, photos, tmp_path, capsys):
    student, ckpt = tiny
    files, pixels = photos
    inputs = torch.stack([read_photo(f) for f in files])
    assert torch.equal(inputs[:2], pixels)  # a 32x32 image is read unchanged
    expected = decode_and_classify(student, encode(student, inputs)).tolist()
    assert len(set(expected)) > 1  # labels that can tell files apart
    bits = tmp_path / "bits"
    assert run("encode", files[0].parent, "--out", bits, "--checkpoint", ckpt) == 0
    out = capsys.readouterr().out
    assert "4 images" in out and f"wrote {bits}" in out
    names = sorted(f.name for f in files)
    assert sorted(p.name for p in bits.iterdir()) == [n + ".es" for n in names]
    for i, f in enumerate(files):  # each image alone, byte for byte the API's bitstream
        assert (bits / f"{f.name}.es").read_bytes() == encode(student, inputs[i : i + 1])

    assert run("decode", bits, "--checkpoint", ckpt, "--out", tmp_path / "labels.csv") == 0
    labels = printed_labels(capsys.readouterr().out)
    assert labels == {f"{f.name}.es": expected[i] for i, f in enumerate(files)}
    with open(tmp_path / "labels.csv") as f:
        assert {Path(r["file"]).name: int(r["label"]) for r in csv.DictReader(f)} == labels

    container = tmp_path / "all.es"
    assert run("encode", *files, "--container", container, "--checkpoint", ckpt,
               "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 4 and summary["total_bytes"] == container.stat().st_size
    assert container.read_bytes() == encode(student, inputs)
    assert run("decode", container, "--checkpoint", ckpt, "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [f"{container}#{i}" for i in range(4)]
    assert [r["label"] for r in rows] == expected


def test_fit_crops_stretches_or_refuses(tmp_path):
    """A 64x32 image, black | white | black in quarters: crop keeps the white middle."""
    image = np.zeros((32, 64, 3), dtype=np.uint8)
    image[:, 16:48] = 255
    path = tmp_path / "wide.png"
    Image.fromarray(image).save(path)
    crop, stretch = read_photo(path, "crop"), read_photo(path, "stretch")
    assert crop.shape == stretch.shape == (3, 32, 32) and crop.dtype == torch.uint8
    assert int(crop.min()) == 255
    assert int(stretch[:, :, 0].max()) < 30 and int(stretch[:, :, 16].min()) > 225
    with pytest.raises(ValueError, match=r"wide.png: 64x32, expected 32x32"):
        read_photo(path, "exact")


def test_bad_images_name_the_file(tiny, photos, tmp_path, capsys):
    _, ckpt = tiny
    files, _ = photos
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG not really")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    for bad in (garbage, empty):
        assert run("encode", files[0], bad, "--out", tmp_path / "o", "--checkpoint", ckpt) == 2
        assert f"{bad}: not an image Pillow can read" in capsys.readouterr().err
    assert run("encode", tmp_path / "nope.png", "--out", tmp_path / "o") == 3
    assert "no image file or folder at" in capsys.readouterr().err
    assert run("encode", files[3], "--fit", "exact", "--out", tmp_path / "o",
               "--checkpoint", ckpt) == 2
    assert "big.png: 96x64, expected 32x32" in capsys.readouterr().err
    twin = tmp_path / "twin"
    twin.mkdir()
    Image.open(files[0]).save(twin / files[0].name)
    assert run("encode", files[0], twin / files[0].name, "--out", tmp_path / "o",
               "--checkpoint", ckpt) == 2
    assert "would both be written as img0.png.es" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written for refused input


def test_bad_bitstreams_and_checkpoints(tiny, tmp_path, capsys):
    student, ckpt = tiny
    folder = tmp_path / "bits"
    folder.mkdir()
    assert run("decode", tmp_path / "missing", "--checkpoint", ckpt) == 3
    assert "no bitstream file or folder at" in capsys.readouterr().err
    assert run("decode", folder, "--checkpoint", ckpt) == 3
    assert "no bitstreams (*.es)" in capsys.readouterr().err
    garbage = folder / "garbage.es"
    garbage.write_bytes(bytes(range(256)) * 2)
    with pytest.raises(BitstreamError, match=r"garbage.es: not an Entropic Student bitstream"):
        decode_files([garbage], lambda data: decode_and_classify(student, data).tolist())
    assert run("decode", garbage, "--checkpoint", ckpt) == 2
    assert f"{garbage}: not an Entropic Student bitstream" in capsys.readouterr().err
    garbage.write_bytes(b"")
    assert run("decode", folder, "--checkpoint", ckpt) == 2
    assert "garbage.es: bitstream of 0 bytes" in capsys.readouterr().err
    assert run("decode", garbage, "--checkpoint", tmp_path / "none.pt") == 3
    assert "no checkpoint at" in capsys.readouterr().err
    assert run("decode", garbage, "--checkpoint", garbage) == 2
    assert "is not a checkpoint written by save_student" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run("decode", garbage, "--server", "localhost")
    assert exc.value.code == 2 and "expected HOST:PORT" in capsys.readouterr().err


def test_without_a_checkpoint_it_says_to_run_the_reproduction(photos, tmp_path, capsys):
    assert run("encode", photos[0][0], "--out", tmp_path / "o", "--data-root",
               tmp_path / "no-data") == 3
    err = capsys.readouterr().err
    assert "paperlab run entropic_student --quick' first, or pass --checkpoint" in err


def test_finds_the_student_the_quick_run_cached(tiny, photos, tmp_path, monkeypatch, capsys):
    try:
        cifar10_dir("train")
    except DataNotFoundError:
        pytest.skip("CIFAR-10 JPEGs not staged under the data root")
    from paperlab.entropic_student.cli import DEFAULT_BETA
    from paperlab.entropic_student.experiment import Config, student_checkpoint

    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    image = photos[0][0]
    assert run("encode", image, "--out", tmp_path / "o") == 3
    err = capsys.readouterr().err
    assert (f"no cached Entropic Student for beta={DEFAULT_BETA:g}, seed 0" in err
            and "--quick' first" in err)
    cached = student_checkpoint(Config.quick(), DEFAULT_BETA)
    assert cached.is_relative_to(tmp_path / "cache")
    cached.parent.mkdir(parents=True)
    cached.symlink_to(tiny[1])
    assert run("encode", image, "--out", tmp_path / "o") == 0
    assert f"student {cached}" in capsys.readouterr().out
    assert (tmp_path / "o" / f"{image.name}.es").read_bytes() == encode(tiny[0],
                                                                        read_photo(image)[None])


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"the server printed nothing in {timeout} s")
    return proc.stdout.readline()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_and_stops_cleanly(tiny, photos, tmp_path, capsys, stop):
    student, ckpt = tiny
    files, pixels = photos
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperlab", ES, "serve", "--port", "0", "--checkpoint", ckpt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc, timeout=120)
        assert line.startswith(f"serving student {ckpt} on 127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        container = tmp_path / "two.es"
        container.write_bytes(encode(student, pixels))
        assert run("decode", container, "--server", f"127.0.0.1:{port}", "--json") == 0
        served = [r["label"] for r in json.loads(capsys.readouterr().out)]
        assert served == decode_and_classify(student, encode(student, pixels)).tolist()
        (tmp_path / "bad.es").write_bytes(b"ES" + bytes(40))
        assert run("decode", tmp_path / "bad.es", "--server", f"127.0.0.1:{port}") == 2
        assert "the server refused a bitstream" in capsys.readouterr().err
        with SplitClient("127.0.0.1", port) as client:  # still connected: does not block stop
            assert client.classify_bytes(container.read_bytes()).labels.tolist() == served
            proc.send_signal(stop)
            out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == 0, err
    assert f"stopped by {stop.name}: 3 clients, 3 replies" in out
    assert run("decode", container, "--server", f"127.0.0.1:{port}") == 1
    assert "cannot reach the server" in capsys.readouterr().err
