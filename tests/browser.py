"""Headless Chromium for tests, driven over the Chrome DevTools protocol (a websocket, with aiohttp)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
                  "--disable-default-apps", "--no-default-browser-check", "--remote-debugging-port=0")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab: commands in, events collected."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self.ws, self.session = ws, session
        self._ids = itertools.count(1000)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._event_seen = asyncio.Event()

    def dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message and message["id"] in self._waiting:
            future = self._waiting.pop(message["id"])
            if "error" in message:
                future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
            else:
                future.set_result(message.get("result", {}))
        elif "method" in message and message.get("sessionId") == self.session:
            self.events.append((message["method"], message.get("params", {})))
            self._event_seen.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params, "sessionId": self.session})
        return await asyncio.wait_for(future, 30)

    async def wait_for_event(self, method: str) -> dict[str, Any]:
        async def seen() -> dict[str, Any]:
            while True:
                for name, params in self.events:
                    if name == method:
                        return params
                self._event_seen.clear()
                await self._event_seen.wait()

        return await asyncio.wait_for(seen(), 30)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))

    def requested_urls(self) -> list[str]:
        return [params["request"]["url"] for name, params in self.events if name == "Network.requestWillBeSent"]


@contextlib.asynccontextmanager
async def open_page(url: str, width: int = 1300, height: int = 1000) -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile, no network services) showing `url`, network events recorded."""
    binary = chromium_path()
    assert binary is not None
    # Chromium's helper processes may still be writing to the profile a moment after the browser exits.
    with tempfile.TemporaryDirectory(prefix="mk-import-chromium-", ignore_cleanup_errors=True) as profile:
        # Its own process group, so that its helper processes end with it.
        process = await asyncio.create_subprocess_exec(
            binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                    break
                await asyncio.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}{path}",
                                                                        max_msg_size=0) as ws:
                pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
                pages: list[Page] = []

                async def pump() -> None:
                    async for message in ws:
                        data = message.json()
                        if data.get("id") in pending:
                            pending.pop(data["id"]).set_result(data.get("result", {}))
                        for page in pages:
                            page.dispatch(data)

                reader = asyncio.create_task(pump())

                async def browser(ident: int, method: str, **params: Any) -> dict[str, Any]:
                    pending[ident] = asyncio.get_running_loop().create_future()
                    await ws.send_json({"id": ident, "method": method, "params": params})
                    return await asyncio.wait_for(pending[ident], 30)

                target = await browser(1, "Target.createTarget", url="about:blank")
                attached = await browser(2, "Target.attachToTarget", targetId=target["targetId"], flatten=True)
                page = Page(ws, attached["sessionId"])
                pages.append(page)
                for domain in ("Network.enable", "Page.enable", "Runtime.enable"):
                    await page.send(domain)
                await page.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                                deviceScaleFactor=1, mobile=False)
                await page.send("Page.navigate", url=url)
                await page.wait_for_event("Page.loadEventFired")
                try:
                    yield page
                finally:
                    with contextlib.suppress(Exception):
                        await browser(3, "Browser.close")
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group this test started, helpers included
            await process.wait()
