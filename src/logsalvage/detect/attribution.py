"""Where an address is registered: country and network owner, offline.

The data is the MaxMind GeoLite2 country + ASN database that the geoip2fast wheel ships
(``geoip2fast-asn-ipv6.dat.gz``, IPv4 and IPv6): country code and name, and the name of the
organisation that announces the network. The file holds no AS *numbers*, so ``asn`` is always None
and ``organisation`` carries the owner's name. The data describes the registry when the database
was built (``database()``), not when the logs were written: an address reassigned since then is
attributed to its new holder — say so when quoting it.

Private, loopback, link-local, shared, multicast, reserved and documentation addresses (RFC 1918,
127/8, the TEST-NETs 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, …) are named as such
without a lookup: they identify no one outside the network that logged them.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from pathlib import Path

_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"

# special-purpose ranges, most specific first: (network, what it is)
_SPECIAL = [(ipaddress.ip_network(net), what) for net, what in (
    ("192.0.2.0/24", "documentation (TEST-NET-1, RFC 5737)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2, RFC 5737)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3, RFC 5737)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT, RFC 6598)"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("0.0.0.0/8", "this network (RFC 1122)"),
    ("::/128", "unspecified"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("240.0.0.0/4", "reserved"),
)]

_reader = None
_lock = threading.Lock()


def _geoip():
    """The geoip2fast reader, loaded once (about a third of a second) on first use."""
    global _reader
    if _reader is None:
        with _lock:
            if _reader is None:
                import geoip2fast
                from geoip2fast import GeoIP2Fast

                path = Path(geoip2fast.__file__).resolve().parent / _DATA_FILE
                _reader = GeoIP2Fast(verbose=False, geoip2fast_data_file=str(path))
    return _reader


def database() -> str:
    """Which data answered: e.g. 'MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618'."""
    return str(_geoip().get_database_info().get("source_info", _DATA_FILE))


def _parse(address: str):
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone index ('fe80::1%eth0')
    ip = ipaddress.ip_address(text)
    if ip.version == 6 and ip.ipv4_mapped is not None:  # '::ffff:93.24.101.89' is an IPv4 client
        ip = ip.ipv4_mapped
    return ip


def _special(ip) -> str | None:
    for net, what in _SPECIAL:
        if ip.version == net.version and ip in net:
            return what
    return None if ip.is_global else "reserved"


def _empty(private: bool, **extra) -> dict:
    return {"country": None, "country_name": None, "asn": None, "organisation": None, "private": private, **extra}


def attribute_one(address: str) -> dict:
    try:
        ip = _parse(address)
    except ValueError:
        return _empty(False, note="not an IP address")
    special = _special(ip)
    if special:
        return _empty(True, range=special)
    hit = _geoip().lookup(str(ip))
    code = getattr(hit, "country_code", "") or ""
    name = getattr(hit, "country_name", "") or ""
    found = len(code) == 2 and code.isalpha()
    out = {"country": code if found else None,
           "country_name": name if found else None,
           "asn": None,
           "organisation": (getattr(hit, "asn_name", "") or None),
           "private": False,
           "network": (getattr(hit, "asn_cidr", "") or getattr(hit, "cidr", "") or None)}
    if not found and not out["organisation"]:
        out["note"] = "not in the database"
    return out


def attribute(addresses: Iterable[str]) -> dict[str, dict]:
    """{address: {"country", "country_name", "asn", "organisation", "private", …}} for each distinct
    address, offline. ``asn`` is None (the shipped data has owner names, not AS numbers); special
    addresses carry ``range`` (what they are) instead of a lookup; an address the database lacks,
    or text that is no address, carries ``note``."""
    out: dict[str, dict] = {}
    for address in addresses:
        if address is None or address in out:
            continue
        out[address] = attribute_one(str(address))
    return out
