"""A minimal HTTP server for the exec benchmark: one fixed 200 answer per connection, handled
inline (clients are timed one at a time), so the server's own cost is small and steady next to
the clients being compared."""
import socket

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def handle(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(RESPONSE)


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(128)
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    try:
        handle(conn)
    except OSError:
        pass
