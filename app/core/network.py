"""Which addresses are this machine's own.

One answer for every place that lets something out only on loopback: the
local API without keys, a Chroma server, an inference server.
"""

from __future__ import annotations

import ipaddress

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    """True for this machine's own addresses: 127.0.0.0/8, ::1 and ``localhost``.

    Names are not resolved: Docent works offline, and a name that resolves
    to loopback today may resolve elsewhere tomorrow, so only the literal
    loopback names count. IPv6 brackets and a trailing dot are ignored.
    """
    host = host.strip().strip("[]").lower().rstrip(".")
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
