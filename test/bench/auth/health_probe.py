#!/usr/bin/env python3
"""Sample GET /health on 127.0.0.1:<port> every <interval_ms> (a new connection each time)
until stdin closes or <max_s> pass; print one JSON line: samples, errors, p50/p99/max in ms.

  python3 health_probe.py <port> [interval_ms=10] [max_s=60]
"""
import json
import os
import select
import socket
import sys
import time

port = int(sys.argv[1])
interval = (float(sys.argv[2]) if len(sys.argv) > 2 else 10.0) / 1000.0
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
req = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
lat, errors, slow = [], 0, []
start = time.monotonic()
nxt = start
print(json.dumps({"ready": True}), flush=True)
while time.monotonic() - start < max_s:
    r, _, _ = select.select([sys.stdin], [], [], 0)
    if r and not os.read(sys.stdin.fileno(), 4096):
        break
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            errors += 1
    except OSError:
        errors += 1
    d = (time.monotonic() - t0) * 1000.0
    lat.append(d)
    if d > 50:
        slow.append([round(t0 - start, 3), round(d, 1)])
    nxt += interval
    pause = nxt - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    else:
        nxt = time.monotonic()
lat.sort()


def pct(p):
    return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2) if lat else None


print(json.dumps({"samples": len(lat), "errors": errors, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                  "max_ms": round(lat[-1], 2) if lat else None, "over_50ms": slow[:50]}), flush=True)
