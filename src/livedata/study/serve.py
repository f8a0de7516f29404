"""A livedata server for the study's end-to-end hits, in its own process so that it does not
share an interpreter lock with the client: ``python -m livedata.study.serve``.

Settings come from the environment (``LIVEDATA_*``) like ``livedata serve``; the socket is
bound to a free port first and the port printed on stdout, so the caller connects at once
(the kernel queues the connection until uvicorn accepts it) without polling.
"""

from __future__ import annotations

import socket

import uvicorn

from livedata.settings import Settings
from livedata.web.app import create_app


def main() -> None:
    app = create_app(Settings())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
