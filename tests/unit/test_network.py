"""The loopback's struct ifreq, packed and unpacked (the ioctls themselves run in the VM
test: a unit test may not touch the host's interfaces)."""

import socket

import pytest

from vigil.boot import network


def test_flags_ifreq_layout():
    req = network.ifreq_flags("lo", network.IFF_UP | 0x8)
    assert len(req) == network.IFREQ_SIZE
    assert req[:16] == b"lo" + bytes(14)
    assert network.flags_of(req) == 0x9
    assert network.flags_of(network.ifreq_flags("lo", -32768)) == 0x8000  # unsigned flags


def test_addr_ifreq_layout():
    req = network.ifreq_addr("lo", "127.0.0.1")
    assert len(req) == network.IFREQ_SIZE
    assert int.from_bytes(req[16:18], "little") == socket.AF_INET
    assert req[18:20] == b"\0\0" and req[20:24] == bytes([127, 0, 0, 1])
    assert network.addr_of(req) == "127.0.0.1"
    assert network.addr_of(network.ifreq_addr("lo", "255.0.0.0")) == "255.0.0.0"


@pytest.mark.parametrize("name", ["", "a" * 16, "a\0b", "a/b"])
def test_bad_interface_names(name):
    with pytest.raises(ValueError):
        network.ifreq_flags(name)
    with pytest.raises(ValueError):
        network.ifreq_addr(name)


def test_bad_address():
    with pytest.raises(OSError):
        network.ifreq_addr("lo", "not-an-address")
