"""/livez latency for a good client while hostile peers hold connections to `healthcheck serve`.

usage: serve_attack.py HOST:PORT REQUESTS SLOWLORIS FLOOD

Opens SLOWLORIS connections that send a request head one byte per second (reopened when serve
closes them) and FLOOD idle connections, then times REQUESTS sequential /livez requests, each on
a new connection as the kubelet makes them. Prints one JSON line: latency percentiles in ms,
failures, and how many attacking connections serve closed."""
import json
import socket
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
addr = (host, int(port))
requests, slowloris, flood = (int(a) for a in sys.argv[2:5])
stop = threading.Event()
closed = [0]


def attack():
    def open_one():
        try:
            s = socket.create_connection(addr, timeout=2)
            s.sendall(b"GET /livez HTTP/1.1\r\nX-Slow: ")
            s.setblocking(False)
            return s
        except OSError:
            return None

    conns = [open_one() for _ in range(slowloris)]
    while not stop.is_set():
        for i, s in enumerate(conns):
            try:
                if s is None:
                    raise OSError
                try:
                    if s.recv(1024) == b"":
                        raise OSError
                    raise OSError  # answered (408): reopen
                except BlockingIOError:
                    pass
                s.send(b"a")
            except OSError:
                if s is not None:
                    closed[0] += 1
                    s.close()
                conns[i] = open_one()
        stop.wait(1.0)
    for s in conns:
        if s is not None:
            s.close()


flooders = []
for _ in range(flood):
    try:
        flooders.append(socket.create_connection(addr, timeout=2))
    except OSError:
        break
attacker = threading.Thread(target=attack)
if slowloris:
    attacker.start()
    time.sleep(2)

latencies, failures = [], 0
for _ in range(requests):
    started = time.perf_counter()
    try:
        with socket.create_connection(addr, timeout=5) as s:
            s.settimeout(5)
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200 "):
            raise OSError(data[:40])
        latencies.append((time.perf_counter() - started) * 1000)
    except OSError:
        failures += 1
    time.sleep(0.005)
stop.set()
if slowloris:
    attacker.join()
for s in flooders:
    s.close()
latencies.sort()


def pct(p):
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 2) if latencies else None


print(json.dumps({
    "requests": requests, "failures": failures, "slowloris": slowloris, "flood": len(flooders),
    "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(latencies[-1], 2) if latencies else None,
    "attackers_closed_by_serve": closed[0],
}))
