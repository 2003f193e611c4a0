#!/usr/bin/env python3
"""Keep-alive HTTP client for the benchmarks: `client.py PORT PATH N`
sends N GETs on one connection, one after the other, and exits non-zero
unless every answer is a 200 with a body. Prints the request count."""
import http.client
import sys

port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    conn.request("GET", path, headers={"User-Agent": "bench-client"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or not body:
        sys.exit(f"{path}: request {i} answered {resp.status} with {len(body)} bytes")
print(n)
