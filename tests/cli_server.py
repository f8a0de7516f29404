"""The real command line, `livedata serve`, as a process group the tests start and stop.

The server binds port 0 and the tests read the port it got from uvicorn's "Uvicorn running
on" line: a port probed free and handed over could be taken meanwhile. Every wait is
bounded, and what does not stop is killed, so a server that hangs fails its test with its
log instead of holding up the run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

LIVEDATA = [sys.executable, "-m", "livedata.cli"]
START_TIMEOUT = 60.0  # seconds a server may take to start or stop; a bound, not a pace
LISTENING = re.compile(r"Uvicorn running on (http://\S+:\d+)")


class CliServer:
    """A `livedata serve` process group (the server and its workers); ``log`` is its stderr."""

    def __init__(self, cache_dir: Path, args: list[str], workers: int, env: dict[str, str]) -> None:
        self.url = ""  # known once it listens
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [*LIVEDATA, "serve", "--port", "0", "--workers", str(workers), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LIVEDATA_CACHE_DIR": str(cache_dir), **env},
            start_new_session=True,  # its own process group, so its workers can be killed too
        )
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(workers,), daemon=True)
        self._reader.start()

    def wait_ready(self) -> None:
        if not self._ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.kill()
            raise AssertionError(f"livedata serve did not start:\n{''.join(self.log)}")

    def kill(self) -> None:
        """``kill -9`` of the server and its workers: no clean-up of any kind runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """Shut down as on Ctrl-C; kill what does not stop within the bound."""
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=START_TIMEOUT)
        self.kill()

    def _reap(self) -> None:
        self.process.wait()
        self._reader.join()  # stderr ends once every process of the group is gone

    def _read(self, workers: int) -> None:
        """Drain stderr (a chatty server would block on a full pipe) and spot readiness."""
        assert self.process.stderr is not None
        with self.process.stderr:
            complete = 0
            for line in self.process.stderr:
                self.log.append(line)
                complete += "Application startup complete." in line
                if listening := LISTENING.search(line):
                    self.url = listening.group(1)
                if complete >= workers and self.url:
                    self._ready.set()
        self._ready.set()  # the process ended: let the caller see why
