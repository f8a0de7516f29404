"""A TCP relay that holds every chunk for a fixed time each way: the link's propagation delay.

``tc netem`` would add it in the kernel, but this machine's kernel is built without it; the
rate is still limited in the kernel (``tbf``), and this relay adds half the round trip in each
direction. Unlike netem it does not stretch TCP's own acknowledgements, so slow start is a
little quicker than over a real long link (a few round trips per connection at most).

``python bench/delay_line.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS``
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque


async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk sent ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    due: deque[tuple[float, bytes]] = deque()
    arrived = asyncio.Event()

    async def send() -> None:
        while True:
            while not due:
                arrived.clear()
                await arrived.wait()
            at, chunk = due.popleft()
            if not chunk:
                break
            await asyncio.sleep(at - loop.time())  # the modelled delay itself
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    while True:
        chunk = await reader.read(1 << 16)
        due.append((loop.time() + delay, chunk))
        arrived.set()
        if not chunk:
            break
    await sender


async def main(listen: str, port: int, target: str, target_port: int, one_way: float) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target, target_port)
        try:
            await asyncio.gather(
                carry(client_r, server_w, one_way), carry(server_r, client_w, one_way)
            )
        except ConnectionError:
            client_w.close()
            server_w.close()

    server = await asyncio.start_server(relay, listen, port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port, target, target_port, ms = sys.argv[1:]
    asyncio.run(main(host, int(port), target, int(target_port), float(ms) / 1000))
