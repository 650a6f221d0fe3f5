"""Where a phone finds the page: the machine's LAN address, and the same as a QR code in the terminal.

`lan_address` asks the kernel which local address it would use to reach a documentation-only
address (RFC 5737's 192.0.2.1): connecting a UDP socket only picks a route, nothing is sent.
The only module importing segno (the QR code).

Threads: the main thread's, at start.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TextIO

_PROBE = ("192.0.2.1", 9)  # TEST-NET-1: never routed anywhere; connect() on UDP sends nothing


def lan_address() -> str | None:
    """This machine's address on its network (the default route's), or None when it has none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(_PROBE)
            address = sock.getsockname()[0]
    except OSError:
        return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_unspecified else address


def page_url(host: str, port: int) -> str:
    """The address to open on a phone: the bound address, or the LAN address when bound on all of them."""
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = lan_address() or "127.0.0.1"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def print_qr(url: str, out: TextIO) -> None:
    """The URL as a QR code drawn with half-block characters (two rows of modules per line)."""
    import io

    import segno

    drawn = io.StringIO()
    segno.make(url, error="m").terminal(out=drawn, compact=True, border=2)
    try:
        out.write(drawn.getvalue())
    except UnicodeEncodeError:  # a terminal that cannot show block characters: the address is printed anyway
        out.write(f"(this terminal cannot show the QR code; open {url})\n")
    out.flush()
