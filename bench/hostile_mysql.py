"""A MySQL server for the memory-bound benchmark: logs anyone in and answers the query with
16 MiB rows until the client goes away. Prints its port, serves one client per connection."""
import socket
import struct
import threading


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def read_packet(conn):
    header = b""
    while len(header) < 4:
        chunk = conn.recv(4 - len(header))
        if not chunk:
            raise OSError
        header += chunk
    n = int.from_bytes(header[:3], "little")
    body = b""
    while len(body) < n:
        chunk = conn.recv(n - len(body))
        if not chunk:
            raise OSError
        body += chunk
    return body


greeting = (b"\x0a5.5.5-10.11.6-MariaDB\x00" + struct.pack("<I", 7) + b"abcdefgh\x00"
            + struct.pack("<H", 0xF7FE) + bytes([45]) + struct.pack("<H", 2)
            + struct.pack("<H", 0x81BF) + bytes([21]) + bytes(10) + b"ijklmnopqrst\x00"
            + b"mysql_native_password\x00")
column = b"".join(bytes([len(f)]) + f for f in [b"def", b"", b"", b"", b"1", b""])
column += bytes([0x0C, 33, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0])
row_len = 0xFFFFFE - 4
row = b"\xfd" + struct.pack("<I", row_len)[:3] + b"x" * row_len


def serve(conn):
    with conn:
        try:
            conn.sendall(packet(0, greeting))
            read_packet(conn)
            conn.sendall(packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
            read_packet(conn)
            conn.sendall(packet(1, b"\x01") + packet(2, column))
            for seq in range(3, 256):
                conn.sendall(packet(seq, row))
        except OSError:
            pass


server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
