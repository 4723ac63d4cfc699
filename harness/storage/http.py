"""The HTTP storage's server: the dataset cache over HTTP, each request charged the throttle's latency and bandwidth.

Run by :mod:`harness.storage.mount` in a process of its own (``python -m harness.storage.http
SOURCE --open-ms ...``), never inside the trial. Python's threading HTTP server (a real HTTP/1.1
server, one thread per connection) serves files under SOURCE read-only: a GET waits ``open_ms``
before its first byte (a request's round trip and the object store's first-byte latency), then
sends the file in 128 KiB pieces, each waiting ``read_ms`` and its turn on the one shared link of
``mb_per_s`` (:class:`~harness.storage.delays.Throttle`). Range requests are not served (the
readers here, WebDataset through curl, read whole shards). It prints ``port: N`` once listening, and
``served: {...}`` (its requests, bytes and CPU while serving) when the parent stops it with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from harness.storage.delays import Throttle, from_options, report_served, server_options

PIECE = 128 * 1024  # bytes per throttled piece, as a FUSE read request


def handler(source: str, throttle: Throttle) -> type[BaseHTTPRequestHandler]:
    root = os.path.realpath(source)

    class Files(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = os.path.realpath(os.path.join(root, unquote(urlsplit(self.path).path).lstrip("/")))
            if not path.startswith(root + os.sep) or not os.path.isfile(path):
                self.send_error(404)
                return
            throttle.on_open()
            size = os.path.getsize(path)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                while piece := f.read(PIECE):
                    throttle.on_read(len(piece))
                    self.wfile.write(piece)

        def log_message(self, format, *args):  # one line per request would be the trial's whole log
            pass

    return Files


def main(argv: list[str] | None = None) -> None:
    opts = server_options("python -m harness.storage.http", __doc__.split("\n")[0]).parse_args(argv)
    throttle = from_options(opts)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(opts.source, throttle))
    server.daemon_threads = True
    started = time.process_time()

    def stop(signum, frame):  # from another thread: serve_forever must not be shut down from its own
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"port: {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.05)
    report_served(throttle, time.process_time() - started)
    sys.exit(0)


if __name__ == "__main__":
    main()
