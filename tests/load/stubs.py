"""A stub HTTP endpoint on 127.0.0.1 in a thread, for load tests (the fixtures of each test module use it)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator


def serve_stub(handler: type[http.server.BaseHTTPRequestHandler], threaded: bool = False) -> Iterator[str]:
    """Serve ``handler`` on a free port (one request at a time unless ``threaded``); yields the generation URL."""
    server_class = http.server.ThreadingHTTPServer if threaded else http.server.HTTPServer
    server = server_class(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/images/generations"
    finally:
        server.shutdown()
        server.server_close()
