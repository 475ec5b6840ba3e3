"""A stand-in for the Hugging Face hub (and any plain download host) on 127.0.0.1, for fetch tests.

It serves ``/<owner>/<repo>/resolve/<revision>/<path>`` (and any other registered path) with
``ETag``, ``X-Repo-Commit`` and ``Content-Length``, answers HEAD and GET, 404 for the rest.
Per file it can misbehave: ``drop`` closes the connection half-way through the body, ``short``
sends a shorter body than HEAD advertised (a wrong size). Every request is recorded.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    body: bytes
    fault: str = ""  # "", "drop" or "short"


class HubStandIn:
    """``with HubStandIn() as hub: hub.add_hub_file(repo, path, data)``; ``hub.url`` is the endpoint."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[tuple[str, str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _answer(self, with_body: bool) -> None:
                path = self.path.split("?")[0]
                standin.requests.append((self.command, path))
                served = standin.files.get(path)
                if served is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                body = served.body
                if with_body and served.fault == "short":
                    body = body[: len(body) // 2]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"' + hashlib.sha256(served.body).hexdigest() + '"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Accept-Ranges", "none")
                self.end_headers()
                if not with_body:
                    return
                if served.fault == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's names)
                self._answer(with_body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(with_body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add_hub_file(self, repo: str, path: str, body: bytes, fault: str = "") -> None:
        """Serve ``body`` as ``repo``'s ``path`` at revision main."""
        self.files[f"/{repo}/resolve/main/{path}"] = Served(body, fault)

    def add_file(self, path: str, body: bytes, fault: str = "") -> None:
        """Serve ``body`` at the plain URL path ``path``."""
        self.files["/" + path.lstrip("/")] = Served(body, fault)

    def gets(self) -> list[str]:
        """Served files requested with GET (downloads), in order; the client's other calls
        (huggingface_hub also asks for ``/api/...`` registries) are left out."""
        return [path for method, path in self.requests if method == "GET" and path in self.files]

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
