#!/usr/bin/env python3
"""Open N keep-open SSE streams to http://127.0.0.1:PORT/PATH, wait until each has received its
first event, print {"open": n} and hold them until stdin closes (or SIGTERM).
  python3 sse_clients.py PORT N [PATH]
"""
import asyncio
import json
import sys


async def one(port, path, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    await reader.readuntil(b"\n\n")  # the first event
    ready.append(1)
    return reader, writer


async def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/mcp"
    ready = []
    conns = []
    sem = asyncio.Semaphore(200)  # do not flood the accept queue

    async def guarded():
        async with sem:
            conns.append(await one(port, path, ready))

    results = await asyncio.gather(*(guarded() for _ in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    print(json.dumps({"open": len(ready), "errors": len(errors),
                      "error": repr(errors[0]) if errors else None}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for _, w in conns:
        w.close()


asyncio.run(main())
