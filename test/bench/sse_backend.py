#!/usr/bin/env python3
"""Benchmark SSE backend on 127.0.0.1: answers every request with an event stream that sends
one event and then stays open (an idle MCP GET stream). Prints {"listening": port} when ready.
  python3 sse_backend.py [port]
"""
import asyncio
import json
import sys

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
EVENT = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/ready"}\n\n'
CHUNK = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)
open_streams = 0


async def handle(reader, writer):
    global open_streams
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + CHUNK)
        await writer.drain()
        open_streams += 1
        try:
            await reader.read()  # until the client (the proxy) closes
        finally:
            open_streams -= 1
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print(json.dumps({"listening": server.sockets[0].getsockname()[1]}), flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
