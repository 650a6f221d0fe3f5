"""Advertise the control port over mDNS/zeroconf as `_osc._udp`, so TouchOSC's browse finds it, and
the web page's port as `_oscjson._tcp` (OSCQuery: ossia score, Chataigne, VDMX find it), with the same
service name.

The only module importing python-zeroconf. Registration runs in its own short-lived
thread (it takes a second or two) and failing to advertise is one info line, never an
error: the port works the same without it. Only addresses a controller can reach are
advertised: with `osc.host` 0.0.0.0 (or ::) every LAN address of that family, with one
address only that one, and with a loopback host nothing at all (neither service; a log line says
so). `osc.zeroconf: false` turns it off, and so does
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
OSCQUERY_TYPE = "_oscjson._tcp.local."


def disabled_by_environment() -> bool:
    return os.environ.get("RAVEMAP_NO_ZEROCONF", "") not in ("", "0")


def service_info(name: str, port: int, addresses: list[str], kind: str = SERVICE_TYPE):
    from zeroconf import ServiceInfo

    host = socket.gethostname().split(".")[0] or "ravemap"
    return ServiceInfo(
        kind,
        f"{name}.{kind}",
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
    """`_osc._udp` for the control `port` and, given a `web_port`, `_oscjson._tcp` for OSCQuery.

    `addresses` and `interfaces` (python-zeroconf's) are for a test that advertises on the loopback
    only; by default the addresses are those `reachable_addresses` finds and zeroconf uses every one."""

    def __init__(self, name: str, port: int, host: str = "0.0.0.0", web_port: int | None = None,
                 addresses: list[str] | None = None, interfaces: list[str] | None = None):
        self.name = name
        self.port = port
        self.host = host
        self.web_port = web_port
        self.addresses = addresses
        self.interfaces = interfaces
        self._zc: Any = None
        self._infos: list[Any] = []
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

            addresses = self.addresses
            if addresses is None:
                addresses = reachable_addresses(self.host, _lan_addresses())
            if not addresses:
                log.info("zeroconf: the control port on %s is reachable at no network address; not advertised, "
                         "neither _osc._udp nor _oscjson._tcp (osc.host 0.0.0.0 opens it to the network)", self.host)
                return
            self._zc = Zeroconf(interfaces=self.interfaces) if self.interfaces is not None else Zeroconf()
            services = [(SERVICE_TYPE, self.port)]
            if self.web_port is not None:
                services.append((OSCQUERY_TYPE, self.web_port))
            for kind, port in services:
                info = service_info(self.name, port, addresses, kind)
                self._zc.register_service(info, allow_name_change=True)
                self._infos.append(info)
                log.info("advertised %r as %s on port %d (%s)", self.name, kind.split(".local")[0], port,
                         ", ".join(addresses))
        except Exception as err:
            log.info("zeroconf advertising failed (%s); connect TouchOSC by host and port", err)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(3.0)
        if self._zc is not None:
            try:
                for info in self._infos:
                    self._zc.unregister_service(info)
                self._zc.close()
            except Exception:
                pass
            self._zc = None
