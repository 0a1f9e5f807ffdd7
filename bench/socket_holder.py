"""Holds N TCP sockets (N/2 connected pairs on loopback) plus one connection to a target port,
for the port-check benchmark. Prints the target port once ready; argv: marker N."""
import resource
import socket
import sys
import time

count = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1024, count + 1024))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
held = []
for _ in range(count // 2):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    held += [client, server]
target = socket.socket()
target.bind(("127.0.0.1", 0))
target.listen(1)
probe = socket.create_connection(target.getsockname())
print(target.getsockname()[1], flush=True)
time.sleep(3600)
