"""The loopback interface, up with 127.0.0.1/8 before any unit starts (ifupdown's `lo`).

Plain ioctls on a socket (SIOCGIFFLAGS/SIOCSIFFLAGS, SIOCGIFADDR/SIOCSIFADDR,
SIOCSIFNETMASK): no program to run, no netlink. Once `lo` is up the kernel gives it ::1
itself (and, on most kernels, 127.0.0.1/8 too: then there is nothing left to set).
"""

import errno
import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFADDR = 0x8915
SIOCSIFADDR = 0x8916
SIOCSIFNETMASK = 0x891C
IFF_UP = 0x1
IFNAMSIZ = 16
IFREQ_SIZE = 40          # sizeof(struct ifreq) on 64-bit Linux
LOOPBACK = ("lo", "127.0.0.1", "255.0.0.0")


# --- struct ifreq, packed and unpacked (pure) ----------------------------------------------

def _name(ifname: str) -> bytes:
    raw = ifname.encode()
    if not raw or len(raw) >= IFNAMSIZ or b"\0" in raw or b"/" in raw:
        raise ValueError(f"{ifname!r} is not an interface name")
    return raw


def ifreq_flags(ifname: str, flags: int = 0) -> bytes:
    """An ifreq carrying ifr_flags (a short)."""
    return struct.pack(f"{IFNAMSIZ}sh", _name(ifname), flags).ljust(IFREQ_SIZE, b"\0")


def flags_of(ifreq: bytes) -> int:
    return struct.unpack_from("h", ifreq, IFNAMSIZ)[0] & 0xFFFF


def ifreq_addr(ifname: str, address: str = "0.0.0.0") -> bytes:
    """An ifreq carrying a struct sockaddr_in (family, port 0, address)."""
    sin = struct.pack("H2s4s", socket.AF_INET, b"\0\0", socket.inet_aton(address))
    return (struct.pack(f"{IFNAMSIZ}s", _name(ifname)) + sin).ljust(IFREQ_SIZE, b"\0")


def addr_of(ifreq: bytes) -> str:
    return socket.inet_ntoa(ifreq[IFNAMSIZ + 4:IFNAMSIZ + 8])


# --- the side effect -----------------------------------------------------------------------

def loopback_up(ifname: str = LOOPBACK[0], address: str = LOOPBACK[1],
                netmask: str = LOOPBACK[2]) -> list[str]:
    """Bring the interface up, then give it its IPv4 address if it has none. Returns the
    problems (logged); what is already done is left as it is."""
    from vigil import logs
    from vigil.boot import problem
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            flags = flags_of(fcntl.ioctl(s, SIOCGIFFLAGS, ifreq_flags(ifname)))
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, ifreq_flags(ifname, flags | IFF_UP))
            current = _address(s, ifname)
            if current is None:
                fcntl.ioctl(s, SIOCSIFADDR, ifreq_addr(ifname, address))
                fcntl.ioctl(s, SIOCSIFNETMASK, ifreq_addr(ifname, netmask))
    except OSError as e:
        return problem(f"{ifname}: {e.strerror or e}")
    if flags & IFF_UP and current is not None:
        return []   # done before us (an initramfs, a container)
    logs.say(f"network: {ifname} up, {current or address}")
    return []


def _address(s: socket.socket, ifname: str) -> str | None:
    try:
        return addr_of(fcntl.ioctl(s, SIOCGIFADDR, ifreq_addr(ifname)))
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:   # no IPv4 address yet
            return None
        raise
