#!/usr/bin/env python3
"""A tiny DNS responder for the resolver tests (t/307-*.t).

Answers A queries for names under .test with 127.0.0.1, other types of
those names with no records, and every other name with NXDOMAIN.
Usage: dns_stub.py PORT PIDFILE
"""
import os
import socket
import struct
import sys


def answer(query):
    qid, flags = query[:2], struct.unpack(">H", query[2:4])[0]
    i = 12
    labels = []
    while query[i] != 0:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    question = query[12:i + 5]
    qtype = struct.unpack(">H", query[i + 1:i + 3])[0]
    rd = flags & 0x0100
    name = ".".join(labels).lower()
    if not name.endswith(".test"):
        return qid + struct.pack(">HHHHH", 0x8083 | rd, 1, 0, 0, 0) + question
    if qtype != 1:
        return qid + struct.pack(">HHHHH", 0x8080 | rd, 1, 0, 0, 0) + question
    record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 1])
    return qid + struct.pack(">HHHHH", 0x8080 | rd, 1, 1, 0, 0) + question + record


def main():
    port, pidfile = int(sys.argv[1]), sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    while True:
        data, addr = s.recvfrom(512)
        try:
            s.sendto(answer(data), addr)
        except (IndexError, struct.error):
            pass


if __name__ == "__main__":
    main()
