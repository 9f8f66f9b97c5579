"""The baseline: a bare aiohttp loop posting pre-built payloads with N requests in flight.

    python bench/bare_loop.py PAYLOADS.jsonl URL DEPARTMENT CONCURRENCY     (MK_USERNAME/MK_PASSWORD)
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

import aiohttp


async def main(bodies: list[bytes], url: str, department: str, concurrency: int) -> None:
    token = base64.b64encode(f"{os.environ['MK_USERNAME']}:{os.environ['MK_PASSWORD']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    endpoint = f"{url}/customer/v2/department/{department}/customer"
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(endpoint, data=body, headers=headers) as response:
                await response.read()
                ok += response.status == 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    print(f"{ok} of {len(bodies)} saved", file=sys.stderr)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as stream:
        payloads = [line.rstrip("\n").encode() for line in stream]
    asyncio.run(main(payloads, sys.argv[2], sys.argv[3], int(sys.argv[4])))
