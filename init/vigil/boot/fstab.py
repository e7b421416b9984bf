"""/etc/fstab: parsed (pure), then mounted in stage 1.

Ordering of units after mounts: there is none to declare. Stage 1 remounts / and mounts
every fstab entry (except `noauto` and `_netdev` ones) *before* the supervisor starts any
unit, so every unit can rely on the local file systems being there (or, for a failed
`nofail` entry, knowingly absent). Network file systems (`_netdev`) are mounted by the
`remote-fs` unit stage 1 generates, a oneshot ordered after `networking` and
`network-online.target`; a unit that needs them says `requires = ["remote-fs"]`.

Failures never stop the boot: a failed `nofail` entry is a warning; any other failure is an
error, logged and returned as a problem (shown by `vigilctl status` under the key `fstab`).

Devices named by UUID=, LABEL=, PARTUUID= or PARTLABEL= are found through /dev/disk/by-*
(when udev made the links), else with blkid when it is installed, else by reading the
superblocks of the block devices in /sys/class/block ourselves (ext2/3/4, xfs, btrfs, vfat,
swap). A device that is not there yet is waited for, with a time limit.
"""

import errno
import os
import time
from dataclasses import dataclass, field

from vigil import linux, logs
from vigil.boot import toml_string
from vigil.boot.mounts import block_filesystems, parse_mounts, unescape
from vigil.files import read_text

DEFAULT_DEVICE_TIMEOUT = 30.0   # seconds to wait for a device that is not there yet
ESSENTIAL = ("/usr", "/var")    # stage 1 waits for the file systems that hold these
UDEV_RUNNING = "/run/udev/control"   # udevd's socket: /dev/disk/by-* links are kept
NOFAIL_DEVICE_TIMEOUT = 3.0     # a nofail device (often a removable disk) is not worth more
RECHECK_AFTER_EVENT = 10.0      # s of looking for a device's by-* link after a block event

# mount(8)'s flag options in pairs: (the option that sets an MS_* flag, the one that clears
# it); later options win, so "ro,rw" is read-write.
FLAG_PAIRS = (
    ("ro", "rw", linux.MS_RDONLY), ("nosuid", "suid", linux.MS_NOSUID),
    ("nodev", "dev", linux.MS_NODEV), ("noexec", "exec", linux.MS_NOEXEC),
    ("sync", "async", linux.MS_SYNCHRONOUS), ("dirsync", None, linux.MS_DIRSYNC),
    ("mand", "nomand", linux.MS_MANDLOCK), ("noatime", "atime", linux.MS_NOATIME),
    ("nodiratime", "diratime", linux.MS_NODIRATIME), ("relatime", "norelatime", linux.MS_RELATIME),
    ("strictatime", "nostrictatime", linux.MS_STRICTATIME),
    ("lazytime", "nolazytime", linux.MS_LAZYTIME), ("silent", "loud", linux.MS_SILENT),
    ("bind", None, linux.MS_BIND), ("rbind", None, linux.MS_BIND | linux.MS_REC),
    # user and users imply noexec, nosuid and nodev unless a later option says otherwise.
    ("user", None, linux.MS_NOEXEC | linux.MS_NOSUID | linux.MS_NODEV),
    ("users", None, linux.MS_NOEXEC | linux.MS_NOSUID | linux.MS_NODEV),
    ("owner", None, linux.MS_NOSUID | linux.MS_NODEV),
    ("group", None, linux.MS_NOSUID | linux.MS_NODEV),
)
# option -> (flags to set, flags to clear)
FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    **{on: (flag, 0) for on, _off, flag in FLAG_PAIRS},
    **{off: (0, flag) for _on, off, flag in FLAG_PAIRS if off},
}
# Meaningful to mount(8) or to us, never to the kernel.
USERSPACE_OPTIONS = {"defaults", "auto", "noauto", "nofail", "_netdev", "nouser", "remount",
                     "loop", "sw"}
TAGS = ("UUID", "LABEL", "PARTUUID", "PARTLABEL")
BY_DIR = {"UUID": "by-uuid", "LABEL": "by-label", "PARTUUID": "by-partuuid",
          "PARTLABEL": "by-partlabel"}


@dataclass(frozen=True)
class Entry:
    line: int
    spec: str                  # as written (unescaped): /dev/vda1, UUID=..., tmpfs, /srv/a
    target: str
    fstype: str
    options: tuple[str, ...]
    flags: int                 # MS_* for mount(2)
    data: str                  # the rest, for the file system
    freq: int = 0
    passno: int = 0
    noauto: bool = False
    nofail: bool = False
    netdev: bool = False
    device_timeout: float | None = None   # x-systemd.device-timeout=, when given

    @property
    def is_swap(self) -> bool:
        return self.fstype == "swap"

    def option_value(self, key: str) -> str | None:
        for opt in self.options:
            name, eq, value = opt.partition("=")
            if name == key:
                return value if eq else ""
        return None


@dataclass
class Fstab:
    mounts: list[Entry] = field(default_factory=list)
    swaps: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pending: list[Entry] = field(default_factory=list)  # devices not there at boot
    pending_swaps: list[Entry] = field(default_factory=list)  # likewise, swap devices

    def root(self) -> Entry | None:
        return next((e for e in self.mounts if e.target == "/"), None)


def parse_options(options: list[str]) -> tuple[int, str]:
    """Options -> (MS_* flags, the data string for the file system). Later options win."""
    flags, data = 0, []
    for opt in options:
        name = opt.partition("=")[0]
        if opt in FLAG_OPTIONS:
            add, remove = FLAG_OPTIONS[opt]
            flags = (flags | add) & ~remove
        elif opt in USERSPACE_OPTIONS or name.startswith("x-") or name in ("comment", "helper"):
            continue
        elif opt:
            data.append(opt)
    return flags, ",".join(data)


def parse(text: str, filename: str = "/etc/fstab") -> Fstab:
    """Every line of an fstab; a bad line is a problem naming file:line and is skipped."""
    tab = Fstab()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            tab.problems.append(f"{filename}:{number}: needs at least device, mount point "
                                f"and type, got {line!r}")
            continue
        if len(fields) > 6:
            tab.problems.append(f"{filename}:{number}: more than 6 fields (a space in a name "
                                "must be written \\040)")
            continue
        spec, target, fstype = (unescape(f) for f in fields[:3])
        options = [unescape(o) for o in (fields[3] if len(fields) > 3 else "defaults").split(",")]
        try:
            freq = int(fields[4]) if len(fields) > 4 else 0
            passno = int(fields[5]) if len(fields) > 5 else 0
        except ValueError:
            tab.problems.append(f"{filename}:{number}: dump and pass must be numbers")
            continue
        if spec == "":
            tab.problems.append(f"{filename}:{number}: empty device")
            continue
        tag, eq, value = spec.partition("=")
        if eq and tag in TAGS:
            if not value.strip('"'):
                tab.problems.append(f"{filename}:{number}: {tag}= needs a value")
                continue
            spec = f"{tag}={value.strip(chr(34))}"
        swap = fstype == "swap"
        if not swap and not target.startswith("/"):
            tab.problems.append(f"{filename}:{number}: mount point {target!r} is not an "
                                "absolute path")
            continue
        flags, data = parse_options(options)
        timeout = None
        for opt in options:
            key, _, value = opt.partition("=")
            if key in ("x-systemd.device-timeout", "x-vigil.device-timeout"):
                try:
                    timeout = float(value.rstrip("s"))
                except ValueError:
                    tab.problems.append(f"{filename}:{number}: {key}: not a number of seconds")
        entry = Entry(number, spec, os.path.normpath(target) if not swap else target, fstype,
                      tuple(options), flags, data, freq, passno,
                      noauto="noauto" in options, nofail="nofail" in options,
                      netdev="_netdev" in options, device_timeout=timeout)
        (tab.swaps if swap else tab.mounts).append(entry)
    return tab


# --- finding devices ------------------------------------------------------------------


def _uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace").strip()


def probe(head: bytes) -> dict[str, str]:
    """A file system's TYPE, UUID and LABEL from its first 68 KiB (the superblocks)."""
    le = int.from_bytes
    if len(head) >= 4096 and head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return {"TYPE": "swap", "UUID": _uuid(head[1036:1052]), "LABEL": _text(head[1052:1068])}
    if len(head) >= 2048 and le(head[1080:1082], "little") == 0xEF53:
        compat, incompat = le(head[1116:1120], "little"), le(head[1120:1124], "little")
        kind = "ext4" if incompat & 0x2C0 else "ext3" if compat & 0x4 else "ext2"
        return {"TYPE": kind, "UUID": _uuid(head[1128:1144]), "LABEL": _text(head[1144:1160])}
    if head[:4] == b"XFSB":
        return {"TYPE": "xfs", "UUID": _uuid(head[32:48]), "LABEL": _text(head[108:120])}
    if len(head) >= 65536 + 555 and head[65536 + 64:65536 + 72] == b"_BHRfS_M":
        return {"TYPE": "btrfs", "UUID": _uuid(head[65568:65584]),
                "LABEL": _text(head[65536 + 299:65536 + 555])}
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        for kind_at, serial_at, label_at in ((82, 67, 71), (54, 39, 43)):
            if head[kind_at:kind_at + 3] == b"FAT":
                serial = head[serial_at:serial_at + 4][::-1].hex().upper()
                label = _text(head[label_at:label_at + 11])
                return {"TYPE": "vfat", "UUID": f"{serial[:4]}-{serial[4:]}",
                        "LABEL": "" if label == "NO NAME" else label}
    return {}


def probe_device(path: str) -> dict[str, str]:
    """probe() of what the device holds; {} when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return probe(f.read(65536 + 4096))
    except OSError:
        return {}


def _block_devices() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/block"))
    except OSError:
        return []


def _scan_superblocks(tag: str, value: str) -> str | None:
    for name in _block_devices():
        dev = f"/dev/{name}"
        if tag == "PARTLABEL":
            uevent = read_text(f"/sys/class/block/{name}/uevent")
            if f"PARTNAME={value}" in uevent.splitlines():
                return dev
            continue
        found = probe_device(dev)
        want = value.lower() if tag == "UUID" else value
        have = found.get(tag, "")
        if (have.lower() if tag == "UUID" else have) == want and have:
            return dev
    return None


def _blkid(tag: str, value: str) -> str | None:
    import shutil
    import subprocess
    exe = shutil.which("blkid", path="/sbin:/usr/sbin:/bin:/usr/bin")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-l", "-o", "device", "-t", f"{tag}={value}"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def by_link(spec: str) -> str | None:
    """udev's link for a tag (LABEL=data -> /dev/disk/by-label/data); None for a path."""
    tag, eq, value = spec.partition("=")
    if not (eq and tag in TAGS):
        return None
    return os.path.join("/dev/disk", BY_DIR[tag], value.replace("/", "\\x2f"))


def find_device(spec: str) -> str | None:
    """The device node for a spec, or None when it is not (yet) there."""
    link = by_link(spec)
    if link is None:
        return spec if os.path.exists(spec) else None
    tag, _eq, value = spec.partition("=")
    if os.path.exists(link):
        return os.path.realpath(link)
    if os.path.exists(UDEV_RUNNING):
        return None  # udev makes the link when the device comes: no scan of every disk
    if tag == "PARTUUID":   # our own scan does not read partition tables
        return _blkid(tag, value)
    return _blkid(tag, value) or _scan_superblocks(tag, value)


def wait_for_device(spec: str, timeout: float) -> str | None:
    """find_device, tried again as devices appear, until timeout.

    Stage 1 runs before the event loop, so blocking here is allowed. pyudev (when it can
    be imported) wakes us when the kernel announces a block device; without it we poll.
    """
    device = find_device(spec)
    if device or timeout <= 0:
        return device
    monitor = _block_monitor()
    deadline = time.monotonic() + timeout
    logs.say(f"waiting up to {timeout:g}s for {spec}")
    # Looked at every 0.25 s only for a while after a block device event (a
    # /dev/disk/by-* link appears a little after the kernel's event), and at first (one
    # may have come before the monitor started); else asleep until the next event: a
    # nofail disk may be waited for all day, and a waiter that wakes 4 times a second
    # takes CPU from the boot.
    recheck_until = time.monotonic() + RECHECK_AFTER_EVENT
    while time.monotonic() < deadline:
        now = time.monotonic()
        left = max(0.0, deadline - now)
        if monitor is not None:
            wait = min(0.25, left) if now < recheck_until else min(left, 3600.0)
            try:
                if monitor.poll(timeout=wait) is not None:
                    recheck_until = time.monotonic() + RECHECK_AFTER_EVENT
            except Exception:  # noqa: BLE001 - a broken monitor only means we poll
                monitor = None
        else:
            time.sleep(min(0.25, left))
        device = find_device(spec)
        if device:
            return device
    return None


def _block_monitor():  # -> pyudev.Monitor | None
    try:
        import pyudev
        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        monitor.filter_by("block")
        monitor.start()
        return monitor
    except Exception:  # noqa: BLE001 - no pyudev or no libudev: we poll instead
        return None


# --- the side effects -------------------------------------------------------------------

def needs_device(entry: Entry) -> bool:
    """A block device (or a tag naming one), as opposed to tmpfs, proc, a bind source..."""
    if linux.MS_BIND & entry.flags:
        return False
    tag, eq, _ = entry.spec.partition("=")
    return bool(eq and tag in TAGS) or entry.spec.startswith("/dev/")


def _fsck_program() -> str | None:
    import shutil
    return shutil.which("fsck", path="/sbin:/usr/sbin:/bin:/usr/bin")


def _start_fsck(exe: str, device: str, fstype: str):  # -> subprocess.Popen | None
    import subprocess
    argv = [exe, "-a"] + (["-t", fstype] if fstype not in ("auto", "") else []) + [device]
    logs.say(f"checking {device}: {' '.join(argv)}")
    try:
        return subprocess.Popen(argv)
    except OSError as e:
        logs.warn(f"fsck {device}: {e}")
        return None


def _fsck_verdict(device: str, proc) -> str | None:
    """Wait for one fsck; None when the file system may be mounted, else why not."""
    import subprocess
    if proc is None:
        return None
    try:
        code = proc.wait(timeout=3600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        logs.warn(f"fsck {device}: still running after an hour, killed; mounting anyway")
        return None
    if code in (0, 1):
        logs.say(f"fsck {device}: " + ("clean" if code == 0 else "errors corrected"))
        return None
    if code == 2 or code == 3:
        logs.warn(f"fsck {device}: errors corrected, a reboot is recommended")
        return None
    if code & 8 and not code & 4:
        logs.warn(f"fsck {device}: fsck itself failed (exit status {code}); mounting anyway")
        return None
    return f"fsck found errors it could not correct (exit status {code})"


def run_fsck(device: str, fstype: str) -> str | None:
    """fsck -a when an fsck exists; None when all is well, else why not."""
    exe = _fsck_program()
    return _fsck_verdict(device, _start_fsck(exe, device, fstype)) if exe else None


def whole_disk(device: str, sys_block: str = "/sys/class/block") -> str:
    """The disk a block device is on (/dev/vdb2 -> vdb), from /sys; the device itself for
    one that is no partition (a whole disk, a loop or dm device) or not in /sys."""
    name = os.path.basename(os.path.realpath(device))
    sys_dir = os.path.realpath(os.path.join(sys_block, name))
    if os.path.exists(os.path.join(sys_dir, "partition")):
        return os.path.basename(os.path.dirname(sys_dir))
    return name


def check_all(found: list[tuple[Entry, str]], disk_of=whole_disk) -> dict[str, str | None]:
    """fsck -a of these (entry, device) pairs in the order fsck -A gives: pass by pass
    (passno), and within a pass the file systems of different disks at once, those on one
    disk one after another (they would share its head). target -> None when it may be
    mounted, else why not."""
    exe = _fsck_program()
    if exe is None:
        return {entry.target: None for entry, _ in found}
    verdicts: dict[str, str | None] = {}
    for passno in sorted({entry.passno for entry, _ in found}):
        queues: dict[str, list[tuple[Entry, str]]] = {}
        for entry, device in found:
            if entry.passno == passno:
                queues.setdefault(disk_of(device), []).append((entry, device))
        while any(queues.values()):
            wave = [queue.pop(0) for queue in queues.values() if queue]
            running = [(entry, device, _start_fsck(exe, device, entry.fstype))
                       for entry, device in wave]
            for entry, device, proc in running:
                verdicts[entry.target] = _fsck_verdict(device, proc)
    return verdicts


def mount_device(source: str, target: str, fstype: str | None, flags: int, data: str) -> str:
    """mount(2) with the type given, or (None, "", "auto") the one the superblock names, or
    else each type the kernel can mount from a device. Returns the type that worked.

    Probing first matters: a wrong guess is logged by the kernel, and ext3 and ext2 come
    before ext4 in its list (the ext4 driver answers all three).
    """
    if fstype in (None, "", "auto"):
        found = probe_device(source).get("TYPE")
        types = [found] if found else block_filesystems(read_text("/proc/filesystems"))
    else:
        types = [fstype]
    last: OSError | None = None
    for kind in types:
        try:
            linux.mount(source, target, kind, flags, data or None)
            return kind
        except OSError as e:   # EINVAL: not this type; keep the most telling error
            if last is None or e.errno != errno.EINVAL:
                last = e
    raise last or OSError(errno.ENODEV, f"mount {target}: no file system type to try")


def _mount(source: str, entry: Entry) -> None:
    if not entry.flags & linux.MS_BIND:
        mount_device(source, entry.target, entry.fstype, entry.flags, entry.data)
        return
    linux.mount(source, entry.target, None, entry.flags & ~linux.MS_RDONLY, entry.data or None)
    if entry.flags & (linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC):
        # A bind mount takes its flags only on a second, remounting call.
        linux.mount("none", entry.target, None,
                    linux.MS_REMOUNT | linux.MS_BIND | (entry.flags & ~linux.MS_REC), None)


def _fail(entry: Entry, reason: str, problems: list[str]) -> None:
    message = f"fstab line {entry.line}: {entry.spec} on {entry.target}: {reason}"
    if entry.nofail:
        logs.warn(message + " (nofail)")
    else:
        logs.error(message)
        problems.append(message)


def device_timeout(entry: Entry, default: float) -> float:
    """How long to wait for this entry's device."""
    if entry.device_timeout is not None:
        return entry.device_timeout
    return min(default, NOFAIL_DEVICE_TIMEOUT) if entry.nofail else default


def remount_root(tab: Fstab, default_timeout: float = DEFAULT_DEVICE_TIMEOUT) -> list[str]:
    """Check / if fstab asks and it is still read-only, then remount it with fstab's options."""
    entry = tab.root()
    if entry is None:
        return []
    problems: list[str] = []
    current = parse_mounts(read_text("/proc/self/mounts")).get("/")
    read_only = current is not None and "ro" in current[2].split(",")
    if entry.passno > 0 and read_only and needs_device(entry):
        device = wait_for_device(entry.spec, device_timeout(entry, default_timeout))
        if device:
            fsck_failed = run_fsck(device, entry.fstype)
            if fsck_failed:
                _fail(entry, fsck_failed + "; / stays read-only", problems)
                return problems
    try:
        linux.mount("", "/", None, linux.MS_REMOUNT | entry.flags, entry.data or None)
        logs.say("remounted / " + ("read-only" if entry.flags & linux.MS_RDONLY else
                                   "read-write"))
    except OSError as e:
        _fail(entry, f"remount: {linux.why(e)}", problems)
    return problems


def essential(target: str) -> bool:
    """/usr and /var hold what nearly every program needs: stage 1 waits for them."""
    return any(target == t or t.startswith(target.rstrip("/") + "/") for t in ESSENTIAL)


def mount_all(tab: Fstab, default_timeout: float = DEFAULT_DEVICE_TIMEOUT) -> list[str]:
    """Mount every entry in file order whose device is there (skipping /, noauto,
    _netdev and what is mounted); an entry whose device is not there yet goes to
    tab.pending, for a unit that waits for it without holding the boot up (mount_units).
    Only /usr and /var (essential) are waited for here."""
    problems: list[str] = []
    mounted = parse_mounts(read_text("/proc/self/mounts"))
    todo: list[Entry] = []
    found: dict[str, str] = {}   # target -> its device, looked up once
    for entry in tab.mounts:
        if entry.target == "/" or entry.noauto or entry.target in mounted:
            continue
        if entry.netdev:
            logs.say(f"fstab line {entry.line}: {entry.target} needs the network: the "
                     "remote-fs unit mounts it")
            continue
        device = find_device(entry.spec) if needs_device(entry) else None
        if needs_device(entry) and device is None and not essential(entry.target):
            logs.say(f"fstab line {entry.line}: {entry.spec} is not there yet: the unit "
                     f"{mount_unit_name(entry.target)} waits for it")
            tab.pending.append(entry)
            continue
        todo.append(entry)
        if device:
            found[entry.target] = device
    # every disk that is there and has a fsck pass, checked before any is mounted
    checked = check_all([(e, found[e.target]) for e in todo
                         if e.target in found and e.passno > 0])
    for entry in todo:
        if entry.target in parse_mounts(read_text("/proc/self/mounts")):
            continue  # a line before this one mounted it
        try:
            mount_entry(entry, default_timeout, checked=checked, device=found.get(entry.target))
        except OSError as e:
            _fail(entry, linux.why(e), problems)
    return problems


def mount_later(target: str, default_timeout: float, root: str = "/") -> int:
    """`vigil --mount TARGET`, run by the unit mount_units made: wait for the entry's
    device (a nofail one for as long as it takes: it is mounted when it appears), fsck,
    mount. Returns the exit status (0 mounted, 1 not)."""
    tab = load(root)
    entry = next((e for e in tab.mounts if e.target == os.path.normpath(target)), None)
    if entry is None:
        logs.error(f"{target}: not in /etc/fstab")
        return 1
    if entry.target in parse_mounts(read_text("/proc/self/mounts")):
        return 0
    timeout = announce_wait(entry, default_timeout)
    try:
        mount_entry(entry, default_timeout, timeout)
    except OSError as e:
        logs.error(f"fstab line {entry.line}: {entry.spec} on {entry.target}: {linux.why(e)}")
        return 1
    notify(f"READY=1\nSTATUS=mounted {entry.spec}")
    return 0


def announce_wait(entry: Entry, default_timeout: float) -> float:
    """For the helper a generated unit runs (--mount, --swap): how long to wait for the
    entry's device (a nofail one without its own timeout: until it comes), said in
    STATUS= for `vigilctl status`."""
    timeout = float("inf") if entry.nofail and entry.device_timeout is None \
        else device_timeout(entry, default_timeout)
    notify(f"STATUS=waiting for {entry.spec}" + (
        f" (up to {timeout:g} s)" if timeout != float("inf") else " (nofail: until it comes)"))
    return timeout


def notify(message: str) -> None:
    """sd_notify to vigil, which runs us as a notify unit."""
    import socket
    path = os.environ.get("NOTIFY_SOCKET")
    if path:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(message.encode(), path)
            except OSError as e:
                logs.warn(f"sd_notify: {e}")


def mount_entry(entry: Entry, default_timeout: float, timeout: float | None = None,
                checked: dict[str, str | None] | None = None,
                device: str | None = None) -> None:
    """One entry: find the device (waiting up to its timeout, unless the caller found
    it), fsck it (unless `checked` already has its verdict), make the mount point,
    mount."""
    source = entry.spec
    if needs_device(entry):
        wait = device_timeout(entry, default_timeout) if timeout is None else timeout
        device = device or wait_for_device(entry.spec, wait)
        if device is None:
            raise OSError(errno.ENODEV, f"device not found within {wait:g} s")
        source = device
        if entry.passno > 0:
            fsck_failed = checked[entry.target] if checked and entry.target in checked \
                else run_fsck(device, entry.fstype)
            if fsck_failed:
                raise OSError(errno.EIO, fsck_failed)
    elif entry.flags & linux.MS_BIND and not os.path.exists(source):
        raise OSError(errno.ENOENT, f"bind source {source} does not exist")
    os.makedirs(entry.target, exist_ok=True)
    _mount(source, entry)
    logs.say(f"mounted {entry.target}")


# Each target in turn, so one server that does not answer does not keep the others out;
# mount(8) reads the entry's options from fstab itself (nofail included).
REMOTE_FS_SCRIPT = ('failed=0; for target in "$@"; do mkdir -p "$target" && '
                    '{ mountpoint -q "$target" || mount "$target"; } || failed=1; done; '
                    'exit $failed')


def mount_unit_name(path: str) -> str:
    """A mount point as systemd names its unit: /srv/my-data -> srv-my\\x2ddata.mount."""
    return _escape_path(path) + ".mount"


def swap_unit_name(spec: str) -> str:
    """A swap device as systemd names its unit, by the path that names the device:
    LABEL=my-swap -> dev-disk-by\\x2dlabel-my\\x2dswap.swap, /dev/vdc2 -> dev-vdc2.swap."""
    return _escape_path(by_link(spec) or spec) + ".swap"


def _escape_path(path: str) -> str:
    """systemd-escape --path: / is -, other bytes than [A-Za-z0-9:_.] are \\xNN."""
    inner = path.strip("/")
    if not inner:
        return "-"
    out = []
    for i, ch in enumerate(inner):
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch in ":_" or (ch == "." and i)):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def mount_units(tab: Fstab, program: list[str]) -> dict[str, str]:
    """A unit (name -> TOML text) for each entry in tab.pending: `program --mount TARGET`,
    and for each of tab.pending_swaps: `program --swap SPEC`; ready (READY=1) once mounted
    or swapping, then active until stopped; its STATUS= says what it waits for. Units that
    name a path under a mount (exec, working_dir, requires_mounts...) wait for it
    (vigil.unit: mount dependencies); others start at once, and nothing waits for swap.
    Pure."""
    units = {}
    for entry in tab.pending:
        units[mount_unit_name(entry.target)] = _waiting_unit(
            f"mount {entry.target} (fstab line {entry.line})", [*program, "--mount", entry.target])
    for entry in tab.pending_swaps:
        units[swap_unit_name(entry.spec)] = _waiting_unit(
            f"swap on {entry.spec} (fstab line {entry.line})", [*program, "--swap", entry.spec])
    return units


def _waiting_unit(description: str, argv: list[str]) -> str:
    return ("# Generated by vigil at boot: this /etc/fstab entry's device was not there.\n"
            "[unit]\n"
            f"description = {toml_string(description)}\n"
            "\n[service]\n"
            'type = "notify"\n'
            "remain_after_exit = true\n"
            'restart = "never"\n'
            "start_timeout = 0\n"
            f"exec = [{', '.join(toml_string(a) for a in argv)}]\n")


def remote_fs_unit(tab: Fstab) -> dict[str, str]:
    """The remote-fs unit (name -> TOML text) for the _netdev entries; {} when there are
    none. Pure."""
    targets = [e.target for e in tab.mounts if e.netdev and not e.noauto]
    if not targets:
        return {}
    argv = ["/bin/sh", "-c", REMOTE_FS_SCRIPT, "remote-fs", *targets]
    return {"remote-fs": (
        "# Generated by vigil at boot from the _netdev entries of /etc/fstab.\n"
        "[unit]\n"
        'description = "remote file systems of /etc/fstab (_netdev)"\n'
        'after = ["networking", "network-online.target"]\n'
        'wants = ["networking", "network-online.target"]\n'
        # What is ordered after systemd's remote-fs.target (cron, atd) waits for these.
        'before = ["remote-fs.target"]\n'
        "\n[service]\n"
        'type = "oneshot"\n'
        f"exec = [{', '.join(toml_string(a) for a in argv)}]\n"
    )}


def load(root: str = "/") -> Fstab:
    """Read and parse root/etc/fstab; a missing file is an empty fstab."""
    path = os.path.join(root, "etc/fstab")
    tab = parse(read_text(path), path)
    for problem in tab.problems:
        logs.error(problem)
    return tab
