"""Failed logins per client address: a sliding minute, in memory, bounded.

Why in memory: the per-account lock (in the database) is what stops password guessing on one
account; this limit only slows one address spraying guesses across many accounts, and a restart
forgetting it costs little. Why bounded: every address costs a small deque, and addresses are
cheap for an attacker (an IPv6 host owns a whole /64), so at most `max_addresses` are tracked
(least recently failing dropped first) and IPv6 addresses count per /64.

Used only from the event loop (no lock needed).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque

WINDOW_S = 60.0


def address_key(host: str | None) -> str:
    """The unit an address is limited by: the IPv4 address, or the IPv6 /64 it is in."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class AddressLimiter:
    """At most `per_minute` failures per address in any 60 s window; then 429 until one ages out.

    An attempt counts from its start (so parallel guesses from one address cannot all slip past
    the check) and is taken back when it succeeds or could not be checked.
    """

    def __init__(self, per_minute: int, max_addresses: int = 10_000, clock=time.monotonic) -> None:  # noqa: ANN001
        self.per_minute = per_minute
        self.max_addresses = max_addresses
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def begin(self, address: str) -> tuple[float | None, int]:
        """Start an attempt: (mark, 0) when it may go on (pass `mark` to `forgive`), or
        (None, seconds to wait) when the address is over its limit."""
        now = self._clock()
        times = self._seen.get(address)
        if times is not None:
            while times and times[0] <= now - WINDOW_S:
                times.popleft()
            if len(times) >= self.per_minute:
                return None, max(1, math.ceil(times[0] + WINDOW_S - now))
        else:
            times = deque(maxlen=self.per_minute)
            self._seen[address] = times
            while len(self._seen) > self.max_addresses:
                self._seen.popitem(last=False)
        self._seen.move_to_end(address)
        times.append(now)
        return now, 0

    def forgive(self, address: str, mark: float) -> None:
        """Take back an attempt that did not fail (a right password, or the check was busy)."""
        times = self._seen.get(address)
        if times is None:
            return
        try:
            times.remove(mark)
        except ValueError:
            return
        if not times:
            del self._seen[address]
