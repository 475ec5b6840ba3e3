"""Zeroconf/mDNS discovery: the OSCQuery server as ``_oscjson._tcp``, the OSC port as ``_osc._udp``.

Clients (TouchDesigner's OSCQuery, Chataigne, ossia score, Vezér) list the engine without being
told its address. The advertisement goes out only on the interfaces the OSC server is bound to:
``127.0.0.1`` (the default) keeps it on loopback, so only this machine sees it; ``0.0.0.0``
advertises on every interface; one address, on that one.

Registering probes the network for a name conflict (about a second and a half per service), so it
runs on its own thread and start-up does not wait (a stop waits for it: zeroconf cannot be closed
in the middle of a registration cleanly). A name already taken (a second engine) gets a suffix.
If multicast is unavailable the failure is logged and the engine runs on without discovery.
"""

from __future__ import annotations

import logging
import socket
import threading

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

log = logging.getLogger(__name__)

OSCQUERY_SERVICE = "_oscjson._tcp.local."
OSC_SERVICE = "_osc._udp.local."


def _unspecified(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def mdns_interfaces(host: str) -> list[str] | InterfaceChoice:
    """The interfaces to advertise on for an OSC server bound to ``host``."""
    if _unspecified(host):
        return InterfaceChoice.All
    return [socket.gethostbyname(host)]


def advertised_addresses(host: str) -> list[str]:
    """The IPv4 addresses a client can reach an OSC server bound to ``host`` at."""
    if not _unspecified(host):
        return [socket.gethostbyname(host)]
    return sorted({str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4})


class Advertiser:
    """Advertises the OSCQuery and OSC services while started.

    ``http_port`` 0 advertises OSC alone. ``name`` is the instance name clients show.
    """

    def __init__(self, name: str, host: str, osc_port: int, http_port: int) -> None:
        self.name = name
        self.host = host
        self.osc_port = osc_port
        self.http_port = http_port
        self.registered: list[ServiceInfo] = []
        """The services as announced (their names carry any suffix a conflict added)."""
        self.ready = threading.Event()
        """Set once registration has finished (or failed)."""
        self._zeroconf: Zeroconf | None = None
        self._thread = threading.Thread(target=self._register, name="vacelive-mdns", daemon=True)

    def services(self) -> list[ServiceInfo]:
        """What is advertised: OSCQuery (when HTTP is on) and OSC."""
        addresses = advertised_addresses(self.host)
        server = socket.gethostname().split(".")[0] + ".local."
        ports = [(OSCQUERY_SERVICE, self.http_port), (OSC_SERVICE, self.osc_port)]
        return [ServiceInfo(kind, f"{self.name}.{kind}", port=port, parsed_addresses=addresses, server=server)
                for kind, port in ports if port]

    def _register(self) -> None:
        try:
            self._zeroconf = Zeroconf(interfaces=mdns_interfaces(self.host), ip_version=IPVersion.V4Only)
            for info in self.services():
                self._zeroconf.register_service(info, allow_name_change=True)
                self.registered.append(info)
                log.info("mDNS: advertising %s on port %d", info.name, info.port)
        except Exception as exc:  # discovery is a convenience: the engine runs on without it
            log.error("mDNS advertisement failed (%s); clients must be given the address", exc)
        finally:
            self.ready.set()

    def start(self) -> None:
        """Register on a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Withdraw the services (goodbye packets) and close; waits for a registration under way."""
        if self._thread.ident is not None:
            self._thread.join(10.0)
        if self._zeroconf is None:
            return
        try:
            if self.registered:
                self._zeroconf.unregister_all_services()
        except Exception as exc:
            log.warning("mDNS withdrawal failed: %s", exc)
        finally:
            self._zeroconf.close()
