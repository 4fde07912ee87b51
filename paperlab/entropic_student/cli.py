"""``paperlab entropic-student encode|decode|serve|diagnose``: the split classifier on your own
images, and the diagnosis of the run's students.

``encode`` reads image files with Pillow, brings each to the student's 32x32 input and writes
its real bitstream (one ``.es`` file per image, or one container of all); ``decode`` reads
bitstreams and prints the predicted label of each image (locally, or from a ``serve`` server
with ``--server``); ``serve`` runs the server side of the split as a long-running socket server
(the wire format of :mod:`paperlab.entropic_student.serve`) until Ctrl-C or SIGTERM.

The model is the student that ``paperlab run entropic_student`` trained and cached (the full
size's if cached, else ``--quick``'s; ``--beta`` picks which), or ``--checkpoint PATH``.

``diagnose`` measures the run's cached students, codecs and WebP side by side on the teacher's
stage features (:mod:`paperlab.entropic_student.diagnose`) and writes
``<out>/entropic_student_diagnosis.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from paperlab.vision.data import CLASSES

SUFFIX = ".es"  # one bitstream (a container of one image or more)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FITS = ("crop", "stretch", "exact")
DEFAULT_BETA = 0.16  # a middle rate, trained by both sizes of the run
RUN_FIRST = "run 'paperlab run entropic_student --quick' first, or pass --checkpoint PATH"
FIT_HELP = ("how an image becomes the student's 32x32 RGB input. The experiment reads CIFAR-10's "
            "32x32 images as they are (so does every mode); other sizes: crop (default) = "
            "centre-crop to a square, then resize with Pillow's Lanczos filter (antialiased); "
            "stretch = resize the whole image to 32x32 (aspect ratio not kept); exact = refuse "
            "any image that is not 32x32. EXIF rotation is applied first")
ENCODE_EXAMPLE = """example:
  paperlab entropic-student encode photos/*.jpg --out bits/
    writes bits/<image file name>.es, one bitstream per image (each encoded alone, as the
    experiment sends them); --container all.es writes one container of all the images instead
  paperlab entropic-student encode photos/ --container all.es --checkpoint student.pt
"""
DECODE_EXAMPLE = """example:
  paperlab entropic-student decode bits/
    prints 'FILE<TAB>LABEL<TAB>CLASS' per image (a container's images as FILE#0, FILE#1, ...);
    decode with the student that encoded (the same --checkpoint / --beta)
  paperlab entropic-student decode all.es --out labels.csv
  paperlab entropic-student decode bits/ --server 127.0.0.1:8765   # ask a running 'serve'
"""
SERVE_EXAMPLE = """example:
  paperlab entropic-student serve --port 8765
    serves the student on 127.0.0.1:8765 until Ctrl-C (or SIGTERM); then, from the edge:
  paperlab entropic-student decode bits/ --server 127.0.0.1:8765
  wire format: request = uint32 length (big-endian) + bitstream (length 0 ends the session);
  reply = uint8 status + float64 server seconds + uint32 length + body (status 0: int64
  little-endian labels; 1: a UTF-8 error message)
"""
DIAGNOSE_EXAMPLE = """example:
  paperlab entropic-student diagnose --out results/full
    loads the teacher, the 4 students and the 3 neural codecs that 'paperlab run
    entropic_student --out results/full' cached (refuses, exit 3, if one is not cached: it does
    not train them at full size) and, on the run's 2,000 evaluated test images, prints and writes
    results/full/entropic_student_diagnosis.json and .md: per teacher stage (layer1..4) the
    relative MSE (MSE / the teacher's variance of that stage) of the student's decoder output
    through its own tail and through the teacher's frozen tail, of the teacher on WebP and
    neural-codec reconstructions, and of the stage-1 student (training record); each student
    against the WebP and codec settings nearest in bytes, with 95% intervals; accuracy of the
    student's decoder output through the teacher's tail vs its own (fine-tuned) tail
  paperlab entropic-student diagnose --quick --betas 0.02,0.16
    the quick size (trains the quick students and codecs first if they are not cached)
  paperlab entropic-student diagnose --out results/full --lambdas 3 --codec-steps 4000
    the lambda = 3 codec only, and beside it one trained 4,000 steps (trained here and
    cached; the run's codecs and students have 1,000); --codec-clip 0 trains it unclipped
"""


# ---------------------------------------------------------------------------------------------
# the model


def find_student(beta: float = DEFAULT_BETA, seed: int = 0,
                 data_root: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint that ``paperlab run entropic_student [--quick] --seed SEED`` cached for
    ``beta``: the full size's if it exists, else the quick size's.

    Raises:
        FileNotFoundError: neither is cached, or the CIFAR-10 training images that key the cache
            are not in any data root; the message says to run the quick reproduction first or to
            pass ``--checkpoint``.
    """
    from paperlab.core.data import DataNotFoundError
    from paperlab.entropic_student.experiment import Config, student_checkpoint

    looked = []
    for cfg in (Config.full(), Config.quick()):
        try:
            path = student_checkpoint(cfg, beta, seed, data_root)
        except DataNotFoundError:
            raise FileNotFoundError(
                "no cached Entropic Student can be found: the CIFAR-10 training images that key "
                f"its cache are in no data root ('paperlab data fetch vision'); {RUN_FIRST}"
            ) from None
        if path.is_file():
            return path
        looked.append(str(path))
    raise FileNotFoundError(f"no cached Entropic Student for beta={beta:g}, seed {seed} (looked "
                            f"for {' and '.join(looked)}); {RUN_FIRST}")


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (default: the student 'paperlab run "
                                      "entropic_student' cached)")
    group.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="a student written by save_student (read with weights_only=True)")
    group.add_argument("--beta", type=float, default=DEFAULT_BETA,
                       help=f"which cached student: its rate weight (default {DEFAULT_BETA:g}; "
                       "one of the run's --betas)")
    group.add_argument("--seed", type=int, default=0, help="the run's --seed (default 0)")
    group.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                       help="the run's --data-root (the training images key the cache)")


def load(args: argparse.Namespace) -> tuple[Any, Path]:
    """The student the command line names and its checkpoint path."""
    from paperlab.entropic_student.model import load_student

    path = args.checkpoint or find_student(args.beta, args.seed, args.data_root)
    return load_student(path), path


# ---------------------------------------------------------------------------------------------
# images


def image_files(inputs: list[Path]) -> list[Path]:
    """The image files named, a folder standing for its images (by suffix, sorted).

    Raises:
        FileNotFoundError: a path that does not exist, or a folder without images.
    """
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in "
                                        f"{path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no image file or folder at {path}")
    return files


def read_photo(path: Path, fit: str = "crop") -> Any:
    """One image file as the student's input, ``uint8 (3, 32, 32)`` (see :data:`FIT_HELP`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: Pillow cannot read it, or (``fit="exact"``) it is not 32x32.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    from paperlab.entropic_student.model import IMAGE_SIZE

    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    size = (IMAGE_SIZE, IMAGE_SIZE)
    try:
        with Image.open(path) as img:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from None
    if rgb.size != size:
        if fit == "exact":
            raise ValueError(f"{path}: {rgb.size[0]}x{rgb.size[1]}, expected {IMAGE_SIZE}x"
                             f"{IMAGE_SIZE} (--fit exact); --fit crop or stretch resizes it")
        rgb = (ImageOps.fit(rgb, size, Image.Resampling.LANCZOS) if fit == "crop"
               else rgb.resize(size, Image.Resampling.LANCZOS))
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy())


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def encode_files(student: Any, images: list[Path], out: Path | None = None,
                 container: Path | None = None, fit: str = "crop") -> dict[str, Any]:
    """Encode ``images`` with ``student``: each alone into ``out/<file name>.es``, or all into
    one ``container`` (in the order given). Returns a summary (the files written, bytes)."""
    import torch

    from paperlab.core.progress import track
    from paperlab.entropic_student.model import encode

    if (out is None) == (container is None):
        raise ValueError("give one of --out DIR and --container FILE")
    if out is not None:
        names: dict[str, Path] = {}
        for path in images:
            if names.setdefault(path.name, path) != path:
                raise ValueError(f"{names[path.name]} and {path} would both be written as "
                                 f"{path.name}{SUFFIX}; encode them into separate folders")
    tensors = [read_photo(path, fit) for path in track(images, "reading images",
                                                       total=len(images))]
    rows: list[dict[str, Any]] = []
    if container is not None:
        data = encode(student, torch.stack(tensors))
        container.parent.mkdir(parents=True, exist_ok=True)
        _write_bytes(container, data)
        rows = [{"image": str(p), "bitstream": f"{container}#{i}"} for i, p in enumerate(images)]
        total = len(data)
    else:
        assert out is not None
        out.mkdir(parents=True, exist_ok=True)
        total = 0
        for path, image in track(zip(images, tensors, strict=True), "encoding",
                                 total=len(images)):
            data = encode(student, image[None])
            target = out / f"{path.name}{SUFFIX}"
            _write_bytes(target, data)
            rows.append({"image": str(path), "bitstream": str(target), "bytes": len(data)})
            total += len(data)
    return {"images": len(images), "total_bytes": total,
            "bytes_per_image": round(total / len(images), 1), "fit": fit,
            "container": None if container is None else str(container), "files": rows}


# ---------------------------------------------------------------------------------------------
# bitstreams


def bitstream_files(inputs: list[Path]) -> list[Path]:
    """The bitstreams named, a folder standing for its ``*.es`` files (sorted).

    Raises:
        FileNotFoundError: a path that does not exist, or a folder without ``.es`` files.
    """
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == SUFFIX)
            if not found:
                raise FileNotFoundError(f"no bitstreams (*{SUFFIX}) in {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no bitstream file or folder at {path}")
    return files


def class_name(label: int, num_classes: int | None = None) -> str:
    """CIFAR-10's name of ``label`` (the students are CIFAR-10 classifiers); ``""`` for a
    model with another number of classes."""
    if num_classes not in (None, len(CLASSES)) or not 0 <= label < len(CLASSES):
        return ""
    return CLASSES[label]


def decode_files(files: list[Path], classify: Callable[[bytes], list[int]],
                 num_classes: int | None = None) -> list[dict[str, Any]]:
    """One row per image of each bitstream file: ``file`` (``FILE#i`` for a container's
    images), ``label``, ``class``. ``classify``: bitstream -> labels.

    Raises:
        BitstreamError: a file that is not a bitstream of this model (naming the file).
    """
    from paperlab.core.progress import track
    from paperlab.entropic_student.codec import BitstreamError

    rows = []
    for path in track(files, "decoding", total=len(files)):
        try:
            labels = classify(path.read_bytes())
        except BitstreamError as err:
            raise BitstreamError(f"{path}: {err}") from None
        for i, label in enumerate(labels):
            name = str(path) if len(labels) == 1 else f"{path}#{i}"
            rows.append({"file": name, "label": label, "class": class_name(label, num_classes)})
    return rows


def _server_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------------------------------------
# the verbs


def encode_tool(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab entropic-student encode``: adds the arguments, returns the handler."""
    parser.epilog = ENCODE_EXAMPLE
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                        help="image files (any format Pillow reads) or folders of them")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="DIR",
                       help=f"write one bitstream per image, DIR/<image file name>{SUFFIX}")
    where.add_argument("--container", type=Path, metavar="FILE",
                       help="write one container of all the images, in the order given")
    parser.add_argument("--fit", choices=FITS, default="crop", help=FIT_HELP)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    _model_arguments(parser)

    def handle(args: argparse.Namespace) -> int:
        images = image_files(args.images)
        student, checkpoint = load(args)
        summary = {"checkpoint": str(checkpoint),
                   **encode_files(student, images, args.out, args.container, args.fit)}
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['images']} images, {summary['total_bytes']} bytes "
              f"({summary['bytes_per_image']} per image), student {checkpoint}")
        print(f"wrote {args.container or args.out}"
              + ("" if args.container else f" ({summary['images']} *{SUFFIX} files)"))
        return 0

    return handle


def decode_tool(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab entropic-student decode``: adds the arguments, returns the handler."""
    parser.epilog = DECODE_EXAMPLE
    parser.add_argument("bitstreams", type=Path, nargs="+", metavar="DIR|FILE",
                        help=f"bitstream files, or folders of *{SUFFIX} files")
    parser.add_argument("--out", type=Path, default=None, metavar="CSV",
                        help="also write the labels as CSV (file,label,class)")
    parser.add_argument("--server", type=_server_address, default=None, metavar="HOST:PORT",
                        help="send the bitstreams to a running 'serve' instead of loading a "
                        "student here")
    parser.add_argument("--json", action="store_true", help="print the labels as JSON")
    _model_arguments(parser)

    def handle(args: argparse.Namespace) -> int:
        import csv
        import io
        import sys

        from paperlab.core.results import atomic_write_text

        files = bitstream_files(args.bitstreams)
        if args.server is None:
            from paperlab.entropic_student.model import decode_and_classify

            student, _ = load(args)
            rows = decode_files(files, lambda data: decode_and_classify(student, data).tolist(),
                                student.num_classes)
        else:
            from paperlab.entropic_student.serve import ServerError, SplitClient

            host, port = args.server
            try:
                client = SplitClient(host, port)
            except OSError as err:
                print(f"paperlab: cannot reach the server at {host}:{port} "
                      f"({err.strerror or err})", file=sys.stderr)
                return 1
            with client:
                try:
                    rows = decode_files(
                        files, lambda data: client.classify_bytes(data).labels.tolist())
                except ServerError as err:
                    raise ValueError(f"the server refused a bitstream: {err}") from None
                except (ConnectionError, TimeoutError) as err:
                    print(f"paperlab: lost the connection to the server at {host}:{port} "
                          f"({err})", file=sys.stderr)
                    return 1
        if args.out is not None:
            table = io.StringIO()
            writer = csv.DictWriter(table, ["file", "label", "class"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(args.out, table.getvalue())
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['file']}\t{row['label']}\t{row['class']}")
        return 0

    return handle


class _Stop(Exception):
    """SIGTERM, raised in the main thread to leave ``serve_forever``."""


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM stop the server (also when the shell started this process
    with SIGINT ignored); the previous handlers come back after. In the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def serve_tool(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab entropic-student serve``: adds the arguments, returns the handler."""
    parser.epilog = SERVE_EXAMPLE
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; the "
                        "server has no authentication)")
    parser.add_argument("--port", type=int, default=8765,
                        help="port (default 8765; 0 = a free one, printed)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="disconnect a client quiet this long (default 60)")
    _model_arguments(parser)

    def handle(args: argparse.Namespace) -> int:
        from paperlab.entropic_student.serve import ModelServer

        if not 0 <= args.port < 65536:
            raise ValueError(f"--port must be in 0..65535, got {args.port}")
        if not args.timeout > 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
        student, checkpoint = load(args)
        try:
            server = ModelServer(student, (args.host, args.port), args.timeout)
        except OSError as err:
            raise ValueError(f"cannot listen on {args.host}:{args.port} "
                             f"({err.strerror or err})") from None
        print(f"serving student {checkpoint} on {args.host}:{server.port} (Ctrl-C to stop)",
              flush=True)
        reason = "stopped"
        with _stop_on_signals():
            try:
                server.serve_forever()
            except (_Stop, KeyboardInterrupt) as stop:
                reason = f"stopped by {stop or 'SIGINT'}"
            finally:
                server.stop()
        print(f"{reason}: {server.clients} clients, {server.replies} replies", flush=True)
        return 0

    return handle


def _floats(text: str) -> tuple[float, ...]:
    from paperlab.core.registry import comma_list

    try:
        values = tuple(float(v) for v in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.02,0.16, got {text!r}") from None
    if not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _qualities(text: str) -> tuple[int, ...]:
    from paperlab.core.registry import comma_list

    try:
        values = tuple(int(v) for v in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected qualities like 5,30, got {text!r}") from None
    if not all(1 <= v <= 100 for v in values):
        raise argparse.ArgumentTypeError(f"qualities must be in 1..100, got {text!r}")
    return values


def diagnose_tool(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab entropic-student diagnose``: adds the arguments, returns the handler."""
    from paperlab.entropic_student.diagnose import WEBP_QUALITIES

    parser.epilog = DIAGNOSE_EXAMPLE
    parser.add_argument("--quick", action="store_true",
                        help="the quick size's models and test images (trained first if not "
                        "cached); default the full size's, which must be cached")
    parser.add_argument("--betas", type=_floats, default=None, metavar="B1,B2",
                        help="which students (default all the size's run trains)")
    parser.add_argument("--webp-qualities", type=_qualities, default=WEBP_QUALITIES,
                        metavar="Q1,Q2", help="WebP qualities (default "
                        f"{','.join(map(str, WEBP_QUALITIES))})")
    parser.add_argument("--eval-images", type=int, default=None, metavar="N",
                        help="test images, 10..10,000 (default the run's: 2,000, quick 300)")
    parser.add_argument("--lambdas", type=_floats, default=None, metavar="L1,L2",
                        help="which neural codecs (default all the size's run trains)")
    parser.add_argument("--codec-steps", type=int, default=None, metavar="N",
                        help="also train (cached) and measure one neural codec per lambda with "
                        "N steps instead of the students' budget: the codec baseline nearer "
                        "convergence (at full size about 3 minutes per 1,000 steps)")
    parser.add_argument("--codec-clip", type=float, default=None, metavar="X",
                        help="with --codec-steps: clip those codecs' gradient norm at X "
                        "(default: as the run's codecs, 1; 0: no clipping)")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                        help="output folder (default results/); the run's record there, if "
                        "any, is quoted beside the measurements")
    parser.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                        help="the run's --data-root")

    def handle(args: argparse.Namespace) -> int:
        import dataclasses
        import sys
        import time

        from paperlab import entropic_student
        from paperlab.core.results import RunContext, atomic_write_text, markdown_table, record
        from paperlab.entropic_student.diagnose import (
            DiagnoseConfig,
            diagnosis_markdown,
            run_diagnosis,
        )
        from paperlab.entropic_student.experiment import Config

        if args.seed < 0 or not 1 <= args.threads <= 64:
            raise ValueError(f"--seed must be >= 0 and --threads in 1..64, got {args.seed}, "
                             f"{args.threads}")
        run = Config.quick() if args.quick else Config.full()
        changes: dict[str, Any] = {"threads": args.threads}
        if args.betas is not None:
            changes["betas"] = args.betas
        if args.eval_images is not None:
            changes["eval_images"] = args.eval_images
        if args.lambdas is not None:
            changes["lambdas"] = args.lambdas
        cfg = DiagnoseConfig(dataclasses.replace(run, **changes), args.webp_qualities,
                             codec_steps=args.codec_steps, codec_clip=args.codec_clip)
        ctx = RunContext(system="entropic_student", quick=args.quick, seed=args.seed,
                         out_dir=args.out, data_root=args.data_root,
                         command="paperlab " + " ".join(sys.argv[1:]))
        tic = time.perf_counter()
        result = run_diagnosis(ctx, cfg)
        rec = record(entropic_student.SYSTEM, ctx, result, time.perf_counter() - tic)
        path = atomic_write_text(args.out / "entropic_student_diagnosis.json",
                                 json.dumps(rec, indent=2) + "\n")
        atomic_write_text(path.with_suffix(".md"), diagnosis_markdown(rec))
        print(markdown_table(rec["results"]))
        print(markdown_table(rec["data"]["side_by_side"]))
        print(markdown_table(rec["data"]["tails"]), end="")
        print(f"wrote {path} (and .md)")
        return 0

    return handle
