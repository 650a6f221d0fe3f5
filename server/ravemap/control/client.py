"""A tiny OSC client for scripts and shells: `ravemap send` and `ravemap status`.

It sends one message to the daemon's control port and, when asked, waits for replies on a
port of its own (`/ravemap/status` and `/ravemap/ping` take that port as their argument, so
no feedback port has to be free). Encoding and decoding go through `ravemap.control.osc`.

Threads: the caller's only.
"""

from __future__ import annotations

import json
import socket
import time

from ravemap.control.osc import decode_packet, encode_message
from ravemap.errors import DeviceError


def parse_arg(text: str) -> object:
    """`3` -> int, `0.5` / `-1e3` -> float, anything else -> string (`s:3` forces a string)."""
    if text.startswith("s:"):
        return text[2:]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class Client:
    def __init__(self, host: str = "127.0.0.1", port: int = 8000):
        self.dest = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(("::" if family == socket.AF_INET6 else "", 0))
        self.reply_port = self.sock.getsockname()[1]

    def send(self, address: str, *args: object) -> None:
        if not address.startswith("/"):
            raise ValueError(f"an OSC address starts with /, got {address!r}")
        self.sock.sendto(encode_message(address, *args), self.dest)

    def replies(self, seconds: float) -> list[tuple[str, list[object]]]:
        got: list[tuple[str, list[object]]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except (TimeoutError, ConnectionRefusedError):
                break
            try:
                got.extend(decode_packet(data))
            except ValueError:
                continue
        return got

    def status(self, timeout: float = 2.0) -> dict:
        self.send("/ravemap/status", self.reply_port)
        for address, args in self.replies(timeout):
            if address == "/ravemap/status" and args:
                return json.loads(str(args[0]))
        raise DeviceError(
            f"no reply from ravemap at {self.dest[0]}:{self.dest[1]} within {timeout} s; is `ravemap serve` "
            "running there, and is this host in its osc.allow?"
        )

    def close(self) -> None:
        self.sock.close()
