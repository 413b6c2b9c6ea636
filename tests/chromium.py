"""Headless Chromium (the Debian package) driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read NUL-terminated JSON commands on fd 3 and write
answers and events on fd 4, so no websocket library and no debugging port are needed.

    with Chromium() as browser:
        page = browser.new_page(1280, 860)
        page.goto(url)
        page.wait_for("document.body.dataset.state === 'ready'")
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


def chromium_executable() -> str | None:
    """The Chromium binary: $CHROMIUM, else `chromium` on PATH (Debian's /usr/bin/chromium)."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ChromiumError(RuntimeError):
    """The browser died, timed out or answered a command with an error."""


def _high_fd(fd: int) -> int:
    """A duplicate of fd numbered 10 or more, so that the shell's 3<&N 4>&M cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Chromium:
    """One headless browser process with a fresh profile."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0) -> None:
        self.executable = executable or chromium_executable()
        if self.executable is None:
            raise ChromiumError("chromium is not installed")
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Chromium:
        """Launch the browser (its stderr goes to a log file inside the throwaway profile)."""
        self._profile = tempfile.TemporaryDirectory(prefix="burgas-chromium-")
        to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())
        args = [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"]
        # Chromium wants the pipe on fds 3 (commands in) and 4 (answers out).
        script = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        log = open(Path(self._profile.name) / "stderr.log", "wb")  # noqa: SIM115 - closed with the profile
        # bash, not sh: dash only redirects single-digit descriptors.
        self._proc = subprocess.Popen(["bash", "-c", script, "bash", *args], stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, pass_fds=(to_browser_r, from_browser_w))
        log.close()
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._writer, self._reader = to_browser_w, from_browser_r
        self.send("Browser.getVersion")
        return self

    def stop(self) -> None:
        """Close the browser and remove the profile."""
        if self._proc is not None:
            with contextlib.suppress(ChromiumError):
                self.send("Browser.close", timeout=5.0)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            os.close(self._writer)
            os.close(self._reader)
            self._proc = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stderr(self) -> str:
        """What the browser logged so far (for failure messages)."""
        if self._profile is None:
            return ""
        return (Path(self._profile.name) / "stderr.log").read_text(errors="replace")[-4000:]

    # -- protocol --------------------------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """One command; returns its result, raises ChromiumError on an error answer or timeout."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._writer, orjson.dumps(message) + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ChromiumError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self._events.append(answer)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError("no answer from chromium in time")
            ready, _, _ = select.select([self._reader], [], [], left)
            if ready:
                chunk = os.read(self._reader, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"chromium exited: {self.stderr()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return orjson.loads(message)

    def events(self, method: str) -> list[dict[str, Any]]:
        """The params of the events of one kind received so far (events arrive while commands wait)."""
        return [event.get("params", {}) for event in self._events if event.get("method") == method]

    def new_page(self, width: int = 1280, height: int = 860) -> Page:
        """A new tab with a fixed viewport."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    """One tab: navigate, evaluate JavaScript, click, capture."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command for this tab."""
        return self.browser.send(method, params, session=self.session)

    def goto(self, url: str) -> None:
        """Navigate; raises on a network error (not on an HTTP error status)."""
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise ChromiumError(f"cannot load {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited); JS exceptions raise."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise ChromiumError(f"{expression!r}: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll until the expression is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise ChromiumError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def click(self, x: float, y: float) -> None:
        """A real left click (press and release) at viewport coordinates."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                   "buttons": 1 if kind == "mousePressed" else 0,
                                                   "clickCount": 1})

    def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
