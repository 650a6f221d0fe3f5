"""Advertise the control port over mDNS/zeroconf as `_osc._udp`, so TouchOSC's browse finds it.

The only module importing python-zeroconf. Registration runs in its own short-lived
thread (it takes a second or two) and failing to advertise is one info line, never an
error: the port works the same without it. Only addresses a controller can reach are
advertised: with `osc.host` 0.0.0.0 (or ::) every LAN address of that family, with one
address only that one, and with a loopback host nothing at all. `osc.zeroconf: false` turns it off, and so does
the environment variable RAVEMAP_NO_ZEROCONF=1 (the test suite sets it: multicast must not
leave a sandbox).

Threads: "ravemap-zeroconf" registers; `close` from the main thread.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from typing import Any

log = logging.getLogger("ravemap.zeroconf")

SERVICE_TYPE = "_osc._udp.local."


def disabled_by_environment() -> bool:
    return os.environ.get("RAVEMAP_NO_ZEROCONF", "") not in ("", "0")


def service_info(name: str, port: int, addresses: list[str]):
    from zeroconf import ServiceInfo

    host = socket.gethostname().split(".")[0] or "ravemap"
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=port,
        parsed_addresses=addresses,
        server=f"{host}.local.",
        properties={"app": "ravemap"},
    )


def _lan_addresses() -> list[str]:
    import ifaddr

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                found.append(ip.ip)
    return found


def reachable_addresses(host: str, lan: list[str]) -> list[str]:
    """Of this machine's LAN addresses `lan`, those a controller reaches the control port at when it
    is bound to `host`: all of them (of its family) for a wildcard, `host` alone for one address,
    none for loopback or a name."""
    try:
        bound = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return []  # "localhost" and other names: not a LAN address
    if bound.is_loopback:
        return []
    if bound.is_unspecified:
        return [a for a in lan if ":" in a] if bound.version == 6 else [a for a in lan if ":" not in a]
    return [host]


class Advertiser:
    def __init__(self, name: str, port: int, host: str = "0.0.0.0"):
        self.name = name
        self.port = port
        self.host = host
        self._zc: Any = None
        self._info: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if disabled_by_environment():
            log.info("zeroconf advertising is off (RAVEMAP_NO_ZEROCONF)")
            return
        self._thread = threading.Thread(target=self._register, name="ravemap-zeroconf", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        try:
            from zeroconf import Zeroconf

            addresses = reachable_addresses(self.host, _lan_addresses())
            if not addresses:
                log.info("zeroconf: the control port on %s is reachable at no network address; not advertised "
                         "(osc.host 0.0.0.0 opens it to the network)", self.host)
                return
            self._info = service_info(self.name, self.port, addresses)
            self._zc = Zeroconf()
            self._zc.register_service(self._info, allow_name_change=True)
            log.info("advertised %r as _osc._udp on port %d (%s)", self.name, self.port, ", ".join(addresses))
        except Exception as err:
            log.info("zeroconf advertising failed (%s); connect TouchOSC by host and port", err)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(3.0)
        if self._zc is not None:
            try:
                if self._info is not None:
                    self._zc.unregister_service(self._info)
                self._zc.close()
            except Exception:
                pass
            self._zc = None
