"""Which network addresses the listener may fetch from (no I/O).

A feed, a connector's instance or an article link is named by whoever tracks an issue or
previews a query, so a fetch could otherwise reach the listener's own network: the cloud
metadata service (169.254.169.254), the loopback interface, the cluster's private ranges.
Only *public unicast* addresses are fetched, unless an operator allows a network
explicitly (``LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS``: the local stack and the tests
read replay servers on 127.0.0.1). The resolved address is what is checked, at connect
time (``adapters/netguard.py``), so a name that resolves differently later (DNS rebinding)
gains nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from legation_core.networks import Network, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix embeds an IPv4 address (RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for a public unicast address: not loopback, private, link-local, multicast,
    reserved, unspecified or shared (100.64/10), nor an IPv6 form of one of them."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus the ``allowed`` networks an operator lists."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_setting(cls, text: str) -> AddressPolicy:
        """The policy of ``LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS``."""
        return cls(parse_networks(text))

    def permits(self, address: IPAddress) -> bool:
        """True when the listener may connect to ``address``."""
        if any(address.version == net.version and address in net for net in self.allowed):
            return True
        return is_public(address)

    def refused(self, addresses: Iterable[IPAddress]) -> list[IPAddress]:
        """The addresses of ``addresses`` the policy refuses."""
        return [address for address in addresses if not self.permits(address)]
