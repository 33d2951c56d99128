"""A simulated IP camera: the scene served as HTTP MJPEG (`multipart/x-mixed-replace`) on
loopback, the way cheap IP cameras serve `/video.mjpg`.

The clip's timeline runs from when the server starts (looping if asked), so a reconnecting
client picks up where the scene is now. During the scene's outages the server keeps the
connection open and sends nothing (a stalled stream); `stop_after_s` ends every stream for
good after that long (the connection closes and new ones are refused); `never_start` accepts
connections and never answers (the case where OpenCV's open blocks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase

BOUNDARY = "campusedgeframe"


class MjpegServer:
    def __init__(
        self,
        frame_jpeg: Callable[[int], bytes],
        frame_count: int,
        fps: float,
        *,
        stalled: Callable[[int], bool] = lambda i: False,
        loop: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        stop_after_s: float | None = None,
        never_start: bool = False,
    ) -> None:
        self.frame_jpeg = frame_jpeg
        self.frame_count = frame_count
        self.fps = fps
        self.stalled = stalled
        self.loop = loop
        self.stop_after_s = stop_after_s
        self.never_start = never_start
        self._started = time.monotonic()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._cache: tuple[int, bytes] | None = None
        self.frames_sent = 0
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                server.connections += 1
                if server.never_start:
                    server._closing.wait()
                    return
                if server._over():
                    self.send_error(503, "stream ended")
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    server._stream(self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegServer:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_until(self, deadline_s: float | None) -> None:
        """Blocks (for the CLI) until the deadline (seconds from now) or Ctrl-C."""
        try:
            if deadline_s is None:
                self._closing.wait()
            else:
                self._closing.wait(deadline_s)
        except KeyboardInterrupt:
            pass

    def _over(self) -> bool:
        return self._closing.is_set() or (
            self.stop_after_s is not None and time.monotonic() - self._started >= self.stop_after_s
        )

    def _index(self) -> int | None:
        i = int((time.monotonic() - self._started) * self.fps)
        if i >= self.frame_count:
            if not self.loop:
                return None
            i %= self.frame_count
        return i

    def _jpeg(self, i: int) -> bytes:
        with self._lock:
            if self._cache is None or self._cache[0] != i:
                self._cache = (i, self.frame_jpeg(i))
            return self._cache[1]

    def _stream(self, out: BufferedIOBase) -> None:
        write = out.write
        flush = out.flush
        last = -1
        while not self._over():
            i = self._index()
            if i is None:
                return
            if i == last or self.stalled(i):
                time.sleep(0.2 / self.fps)
                continue
            last = i
            data = self._jpeg(i)
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            write(head + data + b"\r\n")
            flush()
            self.frames_sent += 1
