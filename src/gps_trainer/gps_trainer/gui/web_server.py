"""The HTTP side of the GUI (standard library ThreadingHTTPServer): the two pages and their
static files, and a JSON API over a PageBackend.

    GET  /                   teleop page          GET  /api/config     conditions, sets, limits
    GET  /dashboard          dashboard page       GET  /api/state      latest topics (polled)
    GET  /static/<file>      scripts, styles      GET  /api/progress   iterations, latest sample
                                                  GET  /api/camera.png latest camera frame
    POST /api/target  {"set": {axis: value}, "step": {axis: delta}}   move the left-arm target
    POST /api/reset   {"condition": name}                              reset both arms
    POST /api/save    {"name", "set_name", "grasp"}                    save the target
    POST /api/trial   {"condition": name, "policy_version": n}         run one trial

Answers are JSON objects with `ok` and, for actions, a `message` the page shows. A refused
request answers 400, a missing peer node 503, and anything unexpected 500 with the error logged:
no request can stop the server or the node.
"""

from __future__ import annotations

import json
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from gps_trainer.gui.page_requests import RequestError
from gps_trainer.gui.ros_calls import PeerUnavailable

STATIC_DIR = Path(__file__).parent / "static"
PAGES = {"/": "teleop.html", "/dashboard": "dashboard.html"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png"}
MAX_BODY_BYTES = 64 * 1024


class GuiHttpServer(ThreadingHTTPServer):
    """Serves the pages for `backend`; errors are reported through `logger` (an rclpy
    logger)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend, logger) -> None:
        super().__init__(address, _Handler)
        self.backend, self.logger = backend, logger


class _Handler(BaseHTTPRequestHandler):
    server: GuiHttpServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        backend = self.server.backend
        getters = {"/api/config": backend.config, "/api/state": backend.state,
                   "/api/progress": backend.progress}
        if path in PAGES:
            self._send_file(STATIC_DIR / PAGES[path])
        elif path.startswith("/static/"):
            self._send_file(_static_file(path[len("/static/"):]))
        elif path == "/api/camera.png":
            self._answer(backend.camera_png, binary=True)
        elif path in getters:
            self._answer(getters[path])
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "message": f"no page {path}"})

    def do_POST(self) -> None:
        backend = self.server.backend
        actions = {"/api/target": backend.move_target, "/api/reset": backend.reset,
                   "/api/save": backend.save, "/api/trial": backend.run_trial}
        action = actions.get(urlsplit(self.path).path)
        if action is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "message": "no such action"})
            return
        self._answer(lambda: action(self._json_body()))

    def _answer(self, produce, binary: bool = False) -> None:
        try:
            result = produce()
            if not binary:
                reply = _json_reply(HTTPStatus.OK, {"ok": True, **result})
            elif result is None:
                reply = _json_reply(HTTPStatus.NOT_FOUND, {"ok": False, "message": "no frame yet"})
            else:
                reply = (HTTPStatus.OK, "image/png", result)
        except RequestError as exc:
            reply = _json_reply(HTTPStatus.BAD_REQUEST, {"ok": False, "message": str(exc)})
        except PeerUnavailable as exc:
            reply = _json_reply(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "message": str(exc)})
        except Exception as exc:                 # noqa: BLE001 - the server must keep serving
            self.server.logger.error(f"{self.command} {self.path} failed: "
                                     f"{traceback.format_exc()}")
            reply = _json_reply(HTTPStatus.INTERNAL_SERVER_ERROR,
                                {"ok": False, "message": f"internal error: {exc}"})
        self._send(*reply)

    def _json_body(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise RequestError("bad Content-Length header") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise RequestError(f"request body must be at most {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"request body is not JSON: {exc}") from None

    def _send_file(self, path: Path | None) -> None:
        if path is None or not path.is_file():
            self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "message": "no such file"})
            return
        self._send(HTTPStatus.OK, CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                   path.read_bytes())

    def _send_json(self, status: HTTPStatus, payload: dict) -> None:
        self._send(*_json_reply(status, payload))

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:     # noqa: A002 - the base class's name
        self.server.logger.debug(format % args)


def _json_reply(status: HTTPStatus, payload: dict) -> tuple[HTTPStatus, str, bytes]:
    return status, "application/json", json.dumps(payload, allow_nan=False).encode()


def _static_file(name: str) -> Path | None:
    """A file directly in STATIC_DIR by its bare name; None for anything else."""
    known = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    return known.get(name)
