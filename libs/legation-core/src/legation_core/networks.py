"""Address ranges named in settings (trusted proxies, networks a service may fetch from):
parsed once, here, with no I/O."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An address range, as :func:`parse_networks` gives them."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR ranges (``10.0.0.0/8, ::1``; a bare address is one
    host); raises ValueError naming the entry that is neither."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or CIDR range") from None
    return tuple(networks)
