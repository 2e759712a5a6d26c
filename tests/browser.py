"""Headless Debian ``chromium`` driven over the Chrome DevTools protocol, for the page tests
(imported by test modules; pytest puts tests/ on sys.path). Its microphone is a fake device
that plays a WAV file once."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect


class Page:
    """One tab: ``call`` a DevTools method, ``evaluate`` JavaScript, ``wait_for`` a condition."""

    def __init__(self, target: dict, port: int):
        self.id, self.port = target["id"], port
        self.connection = contextlib.ExitStack()
        self.ws = self.connection.enter_context(connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
        self.ids = itertools.count(1)

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:  # events (no "id") arrive in between; they are not needed here
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str, timeout: float = 30):
        """The value of a JavaScript expression (a promise is awaited), run as if the user
        had clicked (user activation: an AudioContext may start)."""
        result = self.call(
            "Runtime.evaluate", timeout, expression=expression, returnByValue=True, awaitPromise=True, userGesture=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float):
        """Poll ``expression`` until it is truthy -> its value; AssertionError after ``timeout``
        s, naming what the page shows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        shown = self.evaluate("document.querySelector('main').innerText")
        raise AssertionError(f"timed out waiting for {expression!r}; the page shows:\n{shown}")

    def text(self, element_id: str) -> str:
        return self.evaluate(f"document.getElementById({element_id!r}).textContent")

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        """Close the tab as a user would (its streams' sockets go with it)."""
        self.connection.close()
        urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{self.id}", timeout=30).read()


class Chromium:
    """A headless chromium with a fake microphone playing ``microphone`` (a WAV) once."""

    def __init__(self, folder: Path, microphone: Path, size: tuple[int, int] = (900, 760)):
        binary = shutil.which("chromium")
        if binary is None:
            hint = "run 'bash scripts/setup.sh dev' (apt-get install chromium)"
            raise FileNotFoundError(f"chromium is not installed: {hint}")
        profile = folder / "profile"
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--mute-audio",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", f"--window-size={size[0]},{size[1]}",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop", "--autoplay-policy=no-user-gesture-required",
            "about:blank",
        ]  # fmt: skip
        self.log = folder / "chromium.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log)
        self.port = self._port(profile / "DevToolsActivePort")

    def _port(self, announced: Path, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            if announced.exists() and announced.read_text().count("\n") >= 1:
                return int(announced.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError(f"chromium announced no DevTools port in {timeout} s")

    def open(self, url: str) -> Page:
        """A new tab at ``url``, once its document has loaded."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{url}", method="PUT")
        page = Page(json.loads(urllib.request.urlopen(request, timeout=30).read()), self.port)
        page.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", 30)
        return page

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
