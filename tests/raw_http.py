"""Raw sockets to the proxy, for tests that disconnect, signal or kill it mid-stream: those need the
connection itself, not an SDK client."""

from __future__ import annotations

import json
import socket


def start_stream(url: str, max_tokens: int, deltas: int = 1) -> socket.socket:
    """A raw connection with a greedy stream under way (`deltas` text deltas received)."""
    body = json.dumps({"model": "m", "max_tokens": max_tokens, "stream": True, "messages": [
        {"role": "user", "content": "Write a very long story about a dragon."}], "temperature": 0}).encode()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    received = b""
    while received.count(b"content_block_delta") < deltas:
        received += sock.recv(4096)
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
