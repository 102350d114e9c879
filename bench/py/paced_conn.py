#!/usr/bin/env python3
"""bench/py/paced_conn.py - open RATE new TCP connections per second for
SECONDS s; on each, send one `GET PATH` with `Connection: close` and read
the answer to the end (the server closes). Open loop: connection i is due at
start + i/RATE whatever happened before, and its latency runs from that due
time to the last byte, so a server that falls behind is charged for the
wait (no coordinated omission). One thread, non-blocking sockets, selectors.

Prints one JSON object: sent, ok (status 200 and full body), errors (by
kind), achieved_per_s (completed connections / elapsed), lag_ms_max (how late
the client itself started a connection: it must stay small for the figures
to be the server's), latency p50/p90/p99/max in ms.

usage: paced_conn.py URL [RATE] [SECONDS] [TIMEOUT_S]
"""
import json
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit


def main():
    url = urlsplit(sys.argv[1])
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 1000.0
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    host, port, path = url.hostname, url.port or 80, url.path or "/"
    req = (f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: paced_conn\r\n"
           "Accept: */*\r\nConnection: close\r\n\r\n").encode()
    n = int(rate * secs)
    sel = selectors.DefaultSelector()
    lat, errors, lag_max = [], {}, 0.0
    live = {}  # sock -> [due, buf chunks, sent?]
    t_start = time.perf_counter() + 0.05
    i = 0

    def err(kind, s):
        errors[kind] = errors.get(kind, 0) + 1
        sel.unregister(s)
        s.close()
        del live[s]

    def complete(st):
        data = b"".join(st[1])
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                return len(body) >= int(v.strip())
        return False

    def finish(s, st):
        data = b"".join(st[1])
        head, _, body = data.partition(b"\r\n\r\n")
        ok = head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
        clen = None
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                clen = int(v.strip())
        if ok and (clen is None or len(body) >= clen):
            lat.append((time.perf_counter() - st[0]) * 1000)
        else:
            errors["bad_response"] = errors.get("bad_response", 0) + 1
        sel.unregister(s)
        s.close()
        del live[s]

    while i < n or live:
        now = time.perf_counter()
        while i < n and t_start + i / rate <= now:
            due = t_start + i / rate
            lag_max = max(lag_max, now - due)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.connect_ex((host, port))
            except OSError:
                errors["connect"] = errors.get("connect", 0) + 1
                s.close()
                i += 1
                continue
            live[s] = [due, [], False]
            sel.register(s, selectors.EVENT_WRITE)
            i += 1
        wait = (t_start + i / rate - now) if i < n else 0.05
        for key, ev in sel.select(max(0.0, min(wait, 0.05))):
            s = key.fileobj
            st = live.get(s)
            if st is None:
                continue
            if not st[2]:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    err("connect", s)
                    continue
                try:
                    s.send(req)
                except OSError:
                    err("write", s)
                    continue
                st[2] = True
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(262144)
            except OSError:
                err("read", s)
                continue
            if chunk:
                st[1].append(chunk)
                if complete(st):
                    finish(s, st)   # whole answer in: do not wait for the close
            else:
                finish(s, st)
        now = time.perf_counter()
        for s, st in list(live.items()):
            if now - st[0] > timeout:
                err("timeout", s)
    elapsed = time.perf_counter() - t_start
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3) if lat else None

    print(json.dumps({
        "url": sys.argv[1], "rate": rate, "seconds": secs, "sent": n, "ok": len(lat),
        "errors": sum(errors.values()), "error_kinds": errors,
        "achieved_per_s": round(len(lat) / elapsed, 1), "lag_ms_max": round(lag_max * 1000, 3),
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": round(lat[-1], 3) if lat else None,
    }))


if __name__ == "__main__":
    main()
