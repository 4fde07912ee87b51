"""Split deployment over a loopback socket: the server process decodes bitstreams and
classifies them with the student's tail; the edge side (this process) encodes and sends.

Wire format (both directions length-prefixed, big-endian):

* request: ``uint32 length`` + the bitstream (:func:`~paperlab.entropic_student.model.encode`);
  length 0 ends the session.
* reply: ``uint8 status`` + ``float64 server seconds`` + ``uint32 length`` + body; status 0: the
  body is the predicted class ids as little-endian int64, status 1: a UTF-8 error message (a bad
  bitstream gets an error reply, never a guess).

:class:`SplitServer` (the reproduction's demo) binds 127.0.0.1 on a free port only, accepts one
client, and stops by itself after the session ends, after ``timeout_s`` seconds without
traffic, or at ``max_seconds``. :class:`ModelServer` (``paperlab entropic-student serve``) is
the long-running one: any address, many clients, until stopped. :class:`SplitClient` is the
edge side's connection to either.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import socket
import socketserver
import struct
import threading
import time
from contextlib import AbstractContextManager, nullcontext
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


def serve_connection(student: EntropicStudent, client: socket.socket,
                     deadline: float = math.inf,
                     lock: AbstractContextManager[object] | None = None) -> int:
    """Answer one client's requests on ``client`` until it says goodbye (length 0), closes the
    connection, goes quiet past the socket's timeout, or ``deadline`` (``time.monotonic()``)
    passes; returns the number of replies sent. A bad bitstream gets an error reply and the
    session goes on; a message over ``MAX_MESSAGE`` gets an error reply and ends it. ``lock``
    is held while the student decodes and classifies (one request at a time when shared)."""
    replies = 0
    try:
        while time.monotonic() < deadline:
            (length,) = struct.unpack(">I", _recv_exact(client, 4))
            if length == 0:
                break
            if length > MAX_MESSAGE:
                message = f"message of {length} bytes exceeds {MAX_MESSAGE}".encode()
                client.sendall(REPLY.pack(1, 0.0, len(message)) + message)
                break
            data = _recv_exact(client, length)
            with lock or nullcontext():
                tic = time.perf_counter()
                try:
                    body = decode_and_classify(student, data).numpy().astype("<i8").tobytes()
                    status = 0
                except (ValueError, TypeError) as err:
                    body, status = str(err).encode(), 1
                seconds = time.perf_counter() - tic
            client.sendall(REPLY.pack(status, seconds, len(body)) + body)
            replies += 1
    except (ConnectionError, TimeoutError) as err:
        log.info("session ended after %d replies: %s", replies, err)
    return replies


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
            serve_connection(student, client, deadline)


class ModelServer(socketserver.ThreadingTCPServer):
    """A long-running split server on ``address`` (``(host, port)``, port 0: a free one): any
    number of clients, one thread each, speaking the wire format above; the student decodes
    and classifies one request at a time. ``timeout_s``: a client quiet this long is
    disconnected. Run with ``serve_forever()``, then :meth:`stop`: it ends every open session
    (their clients see the connection end) and closes the listener.

    Raises:
        OSError: the address cannot be bound (in use, not this machine's).
    """

    daemon_threads = False  # stop() ends the sessions, then waits for their threads
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, student: EntropicStudent, address: tuple[str, int],
                 timeout_s: float = 60.0) -> None:
        self.student, self.timeout_s = student, timeout_s
        self.model_lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._stopping = False
        self.clients = self.replies = 0
        super().__init__(address, _Session)

    @property
    def port(self) -> int:
        """The port listened on (the free one picked for port 0)."""
        return int(self.server_address[1])

    def session(self, client: socket.socket) -> None:
        """Serve one accepted client (called in its own thread)."""
        client.settimeout(self.timeout_s)
        with self._open_lock:
            if self._stopping:
                return
            self._open.add(client)
            self.clients += 1
        replies = 0
        try:
            replies = serve_connection(self.student, client, lock=self.model_lock)
        finally:
            with self._open_lock:
                self._open.discard(client)
                self.replies += replies

    def stop(self) -> None:
        """End every open session (a request being answered finishes first), close the
        listener and wait for the sessions' threads. Call after ``serve_forever`` returned."""
        with self._open_lock:
            self._stopping = True
            for client in self._open:
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the client
        self.server_close()


class _Session(socketserver.BaseRequestHandler):
    server: ModelServer

    def handle(self) -> None:
        self.server.session(self.request)


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


class SplitClient:
    """The edge side's connection to a split server (:class:`SplitServer`'s process or a
    :class:`ModelServer`) at ``host:port``; ``timeout_s`` per socket operation.

    Use as a context manager: ``with SplitClient(host, port) as c: c.classify_bytes(b)``.

    Raises:
        OSError: the server cannot be reached (refused, timed out).
    """

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self._sock: socket.socket | None = socket.create_connection((host, port),
                                                                    timeout=timeout_s)

    def classify_bytes(self, data: bytes) -> Reply:
        """Send one bitstream, wait for the labels; :class:`ServerError` if it was refused."""
        if self._sock is None:
            raise RuntimeError("the connection is closed")
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
        """Say goodbye and close the connection."""
        if self._sock is not None:
            try:
                self._sock.sendall(struct.pack(">I", 0))
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SplitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        self._client: SplitClient | None = None

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
        self._client = SplitClient(HOST, parent.recv(), self.timeout_s)
        return self

    def classify_bytes(self, data: bytes) -> Reply:
        """Send one bitstream, wait for the labels; :class:`ServerError` if it was refused."""
        if self._client is None:
            raise RuntimeError("the server is not running (use SplitServer as a context manager)")
        return self._client.classify_bytes(data)

    def close(self) -> None:
        """Say goodbye and wait for the server process to stop (terminate it if it hangs)."""
        if self._client is not None:
            self._client.close()
            self._client = None
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
