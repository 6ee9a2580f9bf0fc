#!/usr/bin/env python3
"""Loopback targets for `make bench` and `make soak` (Python 3 stdlib only).

One asyncio process, two listeners on 127.0.0.1 (ephemeral ports unless given):

  http port  HTTP/1.1 with keep-alive; the path decides the behaviour:
               /ok                200 "ok"
               /delay/<ms>        200 after <ms> milliseconds
               /status/<code>     that status code
               /hang              reads the request, never answers
               /flip/<name>       cycles up -> slow -> down -> hang -> ... by time
                                  (period from --flip-period, phase from <name>);
                                  slow = 200 after --slow-ms; down = 503
               anything else      200 (POST bodies are read and dropped)
  hang port  accepts and never answers (the bytes sent are read and dropped)

On start it prints one JSON line: {"http": PORT, "hang": PORT, "pid": PID}.
It exits on SIGTERM/SIGINT or when its stdin reaches EOF (so it never
outlives the script that started it).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import zlib

MODES = ("up", "slow", "down", "hang")


def response(code, body=b"ok\n"):
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(code, "Status")
    head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Targets:
    def __init__(self, args):
        self.args = args
        self.started = time.monotonic()

    def flip_mode(self, name):
        phase = zlib.crc32(name.encode()) % len(MODES)
        step = int((time.monotonic() - self.started) / self.args.flip_period)
        return MODES[(step + phase) % len(MODES)]

    async def drain_until_eof(self, reader):
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass

    async def http(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                path = parts[1] if len(parts) > 1 else "/"
                path = path.split("?", 1)[0]
                length = 0
                # HTTP/1.0 clients (the monitoring-plugins) read until close.
                close = len(parts) > 2 and parts[2] == "HTTP/1.0"
                for line in lines[1:]:
                    low = line.lower()
                    if low.startswith("connection:"):
                        close = "close" in low or (close and "keep-alive" not in low)
                    if low.startswith("content-length:"):
                        try:
                            length = int(line.split(":", 1)[1].strip())
                        except ValueError:
                            return
                if length:
                    await reader.readexactly(min(length, 1 << 20))
                seg = path.strip("/").split("/")
                kind = seg[0]
                if kind == "flip" and len(seg) > 1:
                    mode = self.flip_mode(seg[1])
                    if mode == "hang":
                        kind = "hang"
                    elif mode == "down":
                        writer.write(response(503, b"down\n"))
                        await writer.drain()
                        if close:
                            return
                        continue
                    elif mode == "slow":
                        await asyncio.sleep(self.args.slow_ms / 1000)
                if kind == "delay" and len(seg) > 1:
                    await asyncio.sleep(int(seg[1]) / 1000)
                if kind == "hang":
                    await self.drain_until_eof(reader)
                    return
                code = 200
                if kind == "status" and len(seg) > 1:
                    code = int(seg[1])
                writer.write(response(code))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def hang(self, reader, writer):
        await self.drain_until_eof(reader)
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--hang-port", type=int, default=0)
    ap.add_argument("--flip-period", type=float, default=1.0,
                    help="seconds each /flip/ mode lasts")
    ap.add_argument("--slow-ms", type=int, default=50)
    args = ap.parse_args()
    t = Targets(args)
    http = await asyncio.start_server(t.http, "127.0.0.1", args.http_port,
                                      backlog=4096, limit=16384)
    hang = await asyncio.start_server(t.hang, "127.0.0.1", args.hang_port,
                                      backlog=4096)
    print(json.dumps({
        "http": http.sockets[0].getsockname()[1],
        "hang": hang.sockets[0].getsockname()[1],
        "pid": os.getpid(),
    }), flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    def stdin_closed():
        if not sys.stdin.buffer.read1(4096) and not stop.done():
            stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), stdin_closed)
    await stop


if __name__ == "__main__":
    asyncio.run(main())
