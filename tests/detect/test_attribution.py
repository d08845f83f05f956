"""Offline attribution of addresses: special ranges named without a lookup, the rest from the
GeoLite2 country + ASN data shipped in the geoip2fast wheel."""

from __future__ import annotations

import pytest

from logsalvage.detect import attribution
from logsalvage.detect.attribution import attribute

KEYS = {"country", "country_name", "asn", "organisation", "private"}


@pytest.mark.parametrize("address,range_", [
    ("10.1.2.3", "private (RFC 1918)"),
    ("172.16.0.9", "private (RFC 1918)"),
    ("192.168.10.11", "private (RFC 1918)"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("192.0.2.5", "documentation (TEST-NET-1, RFC 5737)"),
    ("198.51.100.23", "documentation (TEST-NET-2, RFC 5737)"),
    ("203.0.113.41", "documentation (TEST-NET-3, RFC 5737)"),
    ("2001:db8::7", "documentation (RFC 3849)"),
    ("169.254.1.1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "shared address space (carrier-grade NAT, RFC 6598)"),
    ("224.0.0.1", "multicast"),
    ("::ffff:192.168.1.1", "private (RFC 1918)"),  # an IPv4 client written as IPv6
])
def test_special_addresses_say_so_without_lookup(monkeypatch, address, range_):
    monkeypatch.setattr(attribution, "_geoip", lambda: pytest.fail("looked up a special address"))
    got = attribute([address])[address]
    assert set(got) == KEYS | {"range"}
    assert got["private"] is True and got["range"] == range_
    assert got["country"] is None and got["organisation"] is None and got["asn"] is None


def test_public_addresses_get_country_and_organisation():
    got = attribute(["79.122.31.4", "8.8.8.8", "2001:4860:4860::8888", "::ffff:93.24.101.89"])
    hu = got["79.122.31.4"]
    assert hu["country"] == "HU" and hu["country_name"] == "Hungary" and hu["private"] is False
    assert hu["organisation"] and hu["asn"] is None  # names only: the shipped data has no AS numbers
    assert hu["network"] == "79.122.0.0/17"
    assert got["8.8.8.8"]["country"] == "US" and got["8.8.8.8"]["organisation"] == "GOOGLE"
    assert got["2001:4860:4860::8888"]["organisation"] == "GOOGLE"  # IPv6 from the same file
    assert got["::ffff:93.24.101.89"]["country"] == "FR"  # mapped address looked up as IPv4


def test_not_an_address_and_duplicates():
    got = attribute(["www.example.com", "-", "8.8.8.8", "8.8.8.8", None])
    assert list(got) == ["www.example.com", "-", "8.8.8.8"]
    assert got["www.example.com"]["note"] == "not an IP address" and got["www.example.com"]["private"] is False


def test_reader_is_created_once():
    attribute(["8.8.8.8"])
    first = attribution._geoip()
    attribute(["1.1.1.1"])
    assert attribution._geoip() is first
    assert "GeoLite2" in attribution.database()
