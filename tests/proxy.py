"""A small forwarding proxy on 127.0.0.1 for tests: HTTP CONNECT tunnels, optional Basic credentials, and a
record of every connection and what it asked for."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading


class ForwardProxy:
    """Opens CONNECT tunnels to loopback ports, as a corporate egress proxy opens them to the internet.

    With `credentials`, a CONNECT without the matching Proxy-Authorization is answered 407. Anything but
    CONNECT is answered 501; a tunnel to a host other than loopback is answered 403, so no test can reach
    further than this machine through it.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        #: connections accepted, tunnels or not
        self.connections = 0
        #: host:port of every tunnel opened
        self.tunnels: list[str] = []
        #: the status of every CONNECT answered with something other than a tunnel
        self.refused: list[int] = []
        #: every Proxy-Authorization header received, as sent
        self.authorizations: list[str] = []
        self._open: set[asyncio.StreamWriter] = set()
        self._expected = None if credentials is None else \
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="test-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the test proxy did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for writer in self._open:  # tunnels still open: a server closing does not end them itself
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {name.strip().lower(): value.strip()
                       for name, _, value in (line.partition(":") for line in head[1:] if line)}
            if "proxy-authorization" in headers:
                self.authorizations.append(headers["proxy-authorization"])
            host, _, port = target.rpartition(":")
            if method != "CONNECT":
                await self._refuse(writer, 501, "Not Implemented")
            elif self._expected is not None and headers.get("proxy-authorization") != self._expected:
                await self._refuse(writer, 407, "Proxy Authentication Required",
                                   'Proxy-Authenticate: Basic realm="test"\r\n')
            elif host.strip("[]") not in ("127.0.0.1", "localhost", "::1") or not port.isdigit():
                await self._refuse(writer, 403, "Forbidden")
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                self.tunnels.append(target)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
                return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._open.discard(writer)
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, reason: str, extra: str = "") -> None:
        self.refused.append(status)
        writer.write(f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                     .encode("latin-1"))
        await writer.drain()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(1 << 16):
                sink.write(chunk)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(ConnectionError, RuntimeError):
                sink.close()

    def close(self) -> None:
        """Stop listening and end every tunnel; closing twice is fine."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
