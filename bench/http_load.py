"""What the service benchmarks' load generators share: a few lines of HTTP/1.1 on asyncio streams (a general-purpose
client in Python costs more CPU per request than the service answering it, on the same cores, and would measure
itself), and the CPU time and peak memory of the service's processes read from /proc."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path


class Connection:
    """One keep-alive HTTP/1.1 connection to a loopback server, one request in flight at a time; opened again, as a
    browser does, when the server closed it while idle (uvicorn does after its keep-alive timeout, 5 s)."""

    def __init__(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.port, self.reader, self.writer = port, reader, writer
        self.authority = f"127.0.0.1:{port}"
        self.reopened = 0

    @classmethod
    async def open(cls, port: int) -> Connection:
        """A connection to 127.0.0.1:`port`."""
        return cls(port, *await asyncio.open_connection("127.0.0.1", port))

    async def get(self, target: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """GET `target` (path and query): the status and the body (the server must give a Content-Length)."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = f"GET {target} HTTP/1.1\r\nHost: {self.authority}\r\n{lines}\r\n".encode()
        if self.reader.at_eof():
            await self._reopen()
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as error:
            if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                raise
            await self._reopen()  # closed by the server as the request left: nothing of it was answered
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    async def _reopen(self) -> None:
        self.writer.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.reopened += 1

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        await self.writer.wait_closed()


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (their threads included)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
