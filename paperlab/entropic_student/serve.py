"""Split deployment over a loopback socket: the server process decodes bitstreams and
classifies them with the student's tail; the edge side (this process) encodes and sends.

Wire format (both directions length-prefixed, big-endian):

* request: ``uint32 length`` + the bitstream (:func:`~paperlab.entropic_student.model.encode`);
  length 0 ends the session.
* reply: ``uint8 status`` + ``float64 server seconds`` + ``uint32 length`` + body; status 0: the
  body is the predicted class ids as little-endian int64, status 1: a UTF-8 error message (a bad
  bitstream gets an error reply, never a guess).

The server binds 127.0.0.1 on a free port only, accepts one client, and stops by itself after
the session ends, after ``timeout_s`` seconds without traffic, or at ``max_seconds``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np
import torch

from paperlab.entropic_student.model import EntropicStudent, decode_and_classify, encode

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_MESSAGE = 16 << 20
REPLY = struct.Struct(">BdI")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 16))
        if not chunk:
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _serve(model_path: str, conn, timeout_s: float, max_seconds: float) -> None:  # noqa: ANN001
    """Server process body: load the student, report the port through ``conn``, serve one
    client until it says goodbye, goes quiet for ``timeout_s``, or ``max_seconds`` pass."""
    from paperlab.core.seed import torch_threads
    from paperlab.entropic_student.model import load_student

    deadline = time.monotonic() + max_seconds
    with torch_threads(1), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        student = load_student(model_path)
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(timeout_s)
        conn.send(listener.getsockname()[1])
        conn.close()
        client, _ = listener.accept()
        with client:
            client.settimeout(timeout_s)
            while time.monotonic() < deadline:
                (length,) = struct.unpack(">I", _recv_exact(client, 4))
                if length == 0:
                    break
                if length > MAX_MESSAGE:
                    raise ValueError(f"message of {length} bytes exceeds {MAX_MESSAGE}")
                data = _recv_exact(client, length)
                tic = time.perf_counter()
                try:
                    body = decode_and_classify(student, data).numpy().astype("<i8").tobytes()
                    status = 0
                except (ValueError, TypeError) as err:
                    body, status = str(err).encode(), 1
                seconds = time.perf_counter() - tic
                client.sendall(REPLY.pack(status, seconds, len(body)) + body)


class ServerError(RuntimeError):
    """The server refused a bitstream (its message says why)."""


@dataclass(frozen=True)
class Reply:
    """One round trip: predicted ``labels`` ``(N,)``, ``bytes_sent`` (the bitstream),
    ``server_s`` (decode + classify on the server), ``roundtrip_s`` (send to reply)."""

    labels: torch.Tensor
    bytes_sent: int
    server_s: float
    roundtrip_s: float


class SplitServer:
    """A server process on 127.0.0.1 and the edge side's connection to it.

    Use as a context manager: ``with SplitServer(path) as server: server.classify_bytes(b)``.
    ``model_path``: a student written by :func:`~paperlab.entropic_student.model.save_student`.
    ``timeout_s``: per-operation socket timeout (both sides); ``max_seconds``: server lifetime.
    """

    def __init__(self, model_path: str | os.PathLike[str], timeout_s: float = 30.0,
                 max_seconds: float = 600.0) -> None:
        self.model_path, self.timeout_s, self.max_seconds = str(model_path), timeout_s, max_seconds
        self._proc: mp.process.BaseProcess | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> SplitServer:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, daemon=True,
                                 args=(self.model_path, child, self.timeout_s, self.max_seconds))
        self._proc.start()
        child.close()
        if not parent.poll(self.timeout_s + 60):
            self.close()
            raise TimeoutError("the server process did not report its port in time")
        port = parent.recv()
        self._sock = socket.create_connection((HOST, port), timeout=self.timeout_s)
        return self

    def classify_bytes(self, data: bytes) -> Reply:
        """Send one bitstream, wait for the labels; :class:`ServerError` if it was refused."""
        if self._sock is None:
            raise RuntimeError("the server is not running (use SplitServer as a context manager)")
        if not data:
            raise ValueError("empty bitstream")
        tic = time.perf_counter()
        self._sock.sendall(struct.pack(">I", len(data)) + data)
        status, server_s, length = REPLY.unpack(_recv_exact(self._sock, REPLY.size))
        body = _recv_exact(self._sock, length)
        roundtrip = time.perf_counter() - tic
        if status:
            raise ServerError(body.decode(errors="replace"))
        labels = torch.from_numpy(np.frombuffer(body, dtype="<i8").copy())
        return Reply(labels, len(data), server_s, roundtrip)

    def close(self) -> None:
        """Say goodbye and wait for the server process to stop (terminate it if it hangs)."""
        if self._sock is not None:
            try:
                self._sock.sendall(struct.pack(">I", 0))
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            self._proc.join(self.timeout_s)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
            self._proc = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_inference(student: EntropicStudent, server: SplitServer,
                    images: torch.Tensor) -> list[dict[str, float]]:
    """Edge side of the demo: each image encoded alone (batch 1), sent, classified by the
    server. One row per image: ``bytes``, ``encode_ms``, ``server_ms``, ``roundtrip_ms``,
    ``end_to_end_ms`` (encode + round trip), ``label``."""
    rows = []
    for i in range(images.shape[0]):
        tic = time.perf_counter()
        data = encode(student, images[i : i + 1])
        encode_s = time.perf_counter() - tic
        reply = server.classify_bytes(data)
        rows.append({"bytes": reply.bytes_sent, "encode_ms": 1e3 * encode_s,
                     "server_ms": 1e3 * reply.server_s, "roundtrip_ms": 1e3 * reply.roundtrip_s,
                     "end_to_end_ms": 1e3 * (encode_s + reply.roundtrip_s),
                     "label": int(reply.labels[0])})
    return rows
