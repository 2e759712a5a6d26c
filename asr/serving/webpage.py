"""The page the server shows a browser, on the WebSocket port itself.

A plain HTTP GET (no ``Upgrade: websocket``) is answered before any WebSocket handshake,
through websockets' ``process_request`` hook: ``/`` is the page (``page/index.html``),
``/page.js`` its script, ``/capture.js`` the AudioWorklet that turns the microphone into
16 kHz PCM, ``/info.json`` the model's name and the server's settings. Everything the page
needs comes from here (no CDN). A request with the upgrade header goes on to the stream
handler, so the page streams to the same address it was loaded from.
"""

from __future__ import annotations

import http
import json
from importlib import resources

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


def page_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (body, content type) for every file of the page (the package's ``page/``)."""
    files = {}
    for entry in resources.files("asr.serving").joinpath("page").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files["/" + entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    files["/"] = files["/index.html"]
    return files


def model_info(recognizer, chunk_ms: int) -> dict:
    """What the page shows about the model: its recipe's name, kind and size."""
    recipe = recognizer.recipe
    model = getattr(recognizer, "model", None)
    kind = "ONNX" if recognizer.acoustic.backend == "onnx" else "torch"
    info = {
        "model": recipe.name,
        "backend": kind,
        "layers": recipe.model.n_layers,
        "d_model": recipe.model.d_model,
        "vocab": recognizer.tokenizer.vocab_size,
        "sample_rate": recipe.features.sample_rate,
        "chunk_ms": chunk_ms,
    }
    if kind == "torch" and model is not None:
        info["parameters"] = sum(p.numel() for p in model.parameters())
    return info


class PageHandler:
    """``process_request`` for :func:`websockets.serve`: the page's files, or None to go on
    with the WebSocket handshake."""

    def __init__(self, info: dict):
        self.files = page_files()
        self.files["/info.json"] = (json.dumps(info).encode(), CONTENT_TYPES[".json"])

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        if "websocket" in request.headers.get("Upgrade", "").lower():
            return None
        path = request.path.partition("?")[0]
        if path not in self.files:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no {path} here: the page is at /\n")
        body, content_type = self.files[path]
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
                ("Connection", "close"),
            ]
        )
        return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, body)
