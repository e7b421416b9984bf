"""Our modprobe: the parsers on small texts, and resolution on a real Debian kernel tree."""

import glob
import os
import stat

import pytest

from vigil.boot import modules as m
from vigil.files import config_files

DEP = """\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio.ko
kernel/sound/snd-pcsp.ko:
kernel/drivers/net/dummy.ko.zst:
kernel/crypto/crc32c_generic.ko:
"""
ALIAS = """\
# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias fs-ext4 ext4
alias crypto-crc32c crc32c_generic
alias pci:v00008086d0000[0-9]AB*sv*sd*bc*sc*i* snd_pcsp
"""
CONF = """\
# a comment
options snd-pcsp index=-2
options ext4 \\
    debug=1
blacklist snd_pcsp
install dummy /bin/true
softdep ext4 pre: crypto-crc32c post: virtio_blk
alias mydisk virtio-blk
frobnicate x
options
"""


def db_from(dep: str = DEP, alias: str = ALIAS, conf: str = CONF,
            builtin: str = "kernel/lib/crc-t10dif.ko\n") -> m.ModuleDB:
    return m.ModuleDB(m.parse_dep(dep), m.parse_alias(alias), m.parse_builtin(builtin),
                      m.parse_modprobe_conf(conf, "test.conf"))


def names(steps: list[m.Step]) -> list[str]:
    return [s.name for s in steps]


def test_names_and_dep_table():
    assert m.normalize("snd-pcsp") == "snd_pcsp"
    assert m.normalize("pci:v[0-9]-x") == "pci:v[0-9]_x"
    assert m.module_name("kernel/sound/snd-pcsp.ko.xz") == "snd_pcsp"
    deps = m.parse_dep(DEP + "garbage line\n")
    assert deps["ext4"].deps == ("crc16", "mbcache", "jbd2")
    assert deps["virtio_pci"].path == "kernel/drivers/virtio/virtio_pci.ko.xz"
    assert m.parse_builtin("kernel/lib/crc-t10dif.ko\n\n") == {"crc_t10dif"}


def test_modprobe_conf_every_command_and_errors_with_line_numbers():
    c = m.parse_modprobe_conf(CONF, "test.conf")
    assert c.options == {"snd_pcsp": ["index=-2"], "ext4": ["debug=1"]}
    assert c.blacklist == {"snd_pcsp"}
    assert c.install == {"dummy": "/bin/true"}
    assert c.softdep_pre["ext4"] == ["crypto_crc32c"]
    assert c.softdep_post["ext4"] == ["virtio_blk"]
    assert c.aliases.lookup("mydisk") == ["virtio_blk"]
    assert c.problems == ["test.conf:9: frobnicate: unknown command",
                          "test.conf:10: options: needs a module name"]


def test_dependencies_first_each_once_with_softdeps_and_options():
    steps, problems = m.resolve(db_from(), "ext4", "extra=1")
    assert problems == []
    assert names(steps) == ["crc32c_generic", "crc16", "mbcache", "jbd2", "ext4",
                            "virtio_ring", "virtio", "virtio_blk"]
    assert steps[4].params == "debug=1 extra=1" and steps[4].kind == "load"
    assert steps[4].path == "kernel/fs/ext4/ext4.ko"


def test_order_does_not_trust_the_line_order():
    # virtio_blk lists virtio before virtio_ring, but virtio needs virtio_ring.
    steps, _ = m.resolve(db_from(), "virtio-blk")
    assert names(steps) == ["virtio_ring", "virtio", "virtio_blk"]


def test_aliases_wildcards_classes_and_blacklist():
    db = db_from()
    assert m.lookup(db, "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00") == ["virtio_pci"]
    assert m.lookup(db, "fs-ext4") == ["ext4"]
    assert m.lookup(db, "mydisk") == ["virtio_blk"]
    # Blacklisted: not through its alias, but by its own name it still loads.
    assert m.lookup(db, "pci:v00008086d00005ABCsv0sd0bc0sc0i0") == []
    assert m.lookup(db, "snd-pcsp") == ["snd_pcsp"]
    assert m.lookup(db, "pci:v00008086d0000XABCsv0sd0bc0sc0i0") == []
    assert m.coldplug_modules(db, ["pci:v00001AF4d00001042sv1sd2bc1sc0i0",
                                   "pci:v00008086d00005ABCsv0sd0bc0sc0i0",
                                   "pci:v00001AF4d00001000sv1sd2bc1sc0i0"]) == ["virtio_pci"]


def test_builtin_install_and_missing():
    db = db_from()
    assert m.resolve(db, "crc-t10dif") == ([m.Step("builtin", "crc_t10dif")], [])
    assert m.resolve(db, "dummy") == ([m.Step("install", "dummy", command="/bin/true")], [])
    assert m.resolve(db, "nosuch") == ([], ["module nosuch: not found"])
    broken = db_from(dep="kernel/a.ko: kernel/gone.ko\n")
    steps, problems = m.resolve(broken, "a")
    assert names(steps) == ["a"] and problems == ["module gone: not in modules.dep"]


def test_alias_loop_in_config_terminates():
    db = db_from(conf="alias a b\nalias b a\n")
    assert m.lookup(db, "a")   # whatever it answers, it answers
    assert m.resolve(db, "a")[1]


def test_module_lists_and_command_line():
    assert m.parse_module_list("# c\n; c\nloop\n\nbonding mode=1\n") == ["loop", "bonding mode=1"]
    values = {"modules-load": ["a,b"], "vigil.modules": ["c"], "ext4.debug": ["1"],
              "snd-pcsp.enable": [""], "vigil.x": ["1"], "modprobe.blacklist": ["x-y,z"]}
    assert m.cmdline_modules(values) == ["a", "b", "c"]
    options, blacklist = m.cmdline_options(values)
    assert options == {"ext4": ["debug=1"], "snd_pcsp": ["enable"]}
    assert blacklist == {"x_y", "z"}


def test_config_files_earlier_dir_hides_later(tmp_path):
    for d, name in (("etc/m", "a.conf"), ("lib/m", "a.conf"), ("lib/m", "b.conf"),
                    ("lib/m", "c.txt")):
        os.makedirs(tmp_path / d, exist_ok=True)
        (tmp_path / d / name).write_text("x\n")
    found = config_files(("/etc/m", "/run/m", "/lib/m"), root=str(tmp_path))
    assert found == [str(tmp_path / "etc/m/a.conf"), str(tmp_path / "lib/m/b.conf")]


def test_wanted_modules_order(tmp_path):
    (tmp_path / "etc/modules-load.d").mkdir(parents=True)
    (tmp_path / "etc/modules").write_text("# /etc/modules\nloop max_loop=8\n")
    (tmp_path / "etc/modules-load.d/x.conf").write_text("dummy\n")
    assert m.wanted_modules(str(tmp_path), {"modules-load": ["a"]}) == [
        ("a", ""), ("loop", "max_loop=8"), ("dummy", "")]


def test_load_skips_loaded_and_builtin_and_reports(monkeypatch):
    calls = []
    monkeypatch.setattr(m, "load_file", lambda path, params: calls.append((path, params)))
    loaded = {"virtio_ring"}
    steps = [m.Step("load", "virtio_ring", path="kernel/r.ko"),
             m.Step("builtin", "crc_t10dif"),
             m.Step("load", "virtio", path="kernel/v.ko", params="p=1"),
             m.Step("install", "dummy", command="exit 3")]
    reported: list[str] = []
    problems = m.load(steps, "/mods", loaded, report=reported.append)
    assert calls == [("/mods/kernel/v.ko", "p=1")]
    assert loaded == {"virtio_ring", "crc_t10dif", "virtio"}
    assert problems == reported == ["module dummy: install command failed: exit status 3"]


def test_load_eexist_is_success(monkeypatch):
    def exists(path: str, params: str) -> None:
        raise OSError(17, "File exists")
    monkeypatch.setattr(m, "load_file", exists)
    loaded: set[str] = set()
    assert m.load([m.Step("load", "x", path="/x.ko")], "/", loaded, report=print) == []
    assert loaded == {"x"}


def test_xz_module_is_decompressed(tmp_path, monkeypatch):
    import lzma
    (tmp_path / "x.ko.xz").write_bytes(lzma.compress(b"\x7fELF module"))
    seen = []
    monkeypatch.setattr(m.linux, "init_module", lambda image, params: seen.append((image, params)))
    m.load_file(str(tmp_path / "x.ko.xz"), "a=1")
    assert seen == [(b"\x7fELF module", "a=1")]


# --- the real thing: Debian's kernel, as fetched for the VM tests ----------------------------

def _kernel_tree() -> str | None:
    found = sorted(glob.glob(os.path.expanduser("~/.cache/vigil/kernel/lib/modules/*/modules.dep")))
    return os.path.dirname(found[-1]) if found else None


KERNEL = _kernel_tree()
real = pytest.mark.skipif(KERNEL is None, reason="no Debian kernel tree with modules.dep in "
                          "~/.cache/vigil/kernel (the VM harness fetches it)")


@pytest.fixture(scope="module")
def real_db() -> m.ModuleDB:
    assert KERNEL is not None
    db, problems = m.load_db(KERNEL, root="/nonexistent")
    assert problems == []
    return db


@real
def test_real_virtio_blk_after_its_dependencies(real_db):
    steps, problems = m.resolve(real_db, "virtio_blk")
    assert problems == []
    order = names(steps)
    assert order[-1] == "virtio_blk"
    for dep in real_db.deps["virtio_blk"].deps:
        assert order.index(dep) < order.index("virtio_blk")
    assert len(order) == len(set(order))
    assert all(os.path.exists(os.path.join(KERNEL, s.path)) for s in steps)


@real
def test_real_ext4_dependencies_first(real_db):
    order = names(m.resolve(real_db, "ext4")[0])
    for dep in ("jbd2", "mbcache", "crc16"):
        assert order.index(dep) < order.index("ext4")
    assert order[-1] == "ext4"


@real
def test_real_modalias_of_a_virtio_block_pci_device(real_db):
    alias = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
    assert m.lookup(real_db, alias) == ["virtio_pci"]
    order = names(m.resolve(real_db, alias)[0])
    assert order[-1] == "virtio_pci" and order.index("virtio_ring") < order.index("virtio_pci")
    assert m.lookup(real_db, "fs-ext4") == ["ext4"]


@real
def test_real_every_module_resolves(real_db):
    for name in real_db.deps:
        steps, problems = m.resolve(real_db, name)
        assert problems == [], name
        assert names(steps).count(name) == 1


def test_udev_found_and_its_units_are_valid(tmp_path):
    import tomllib

    from vigil import unit
    from vigil.boot import udev
    daemon = tmp_path / "lib/systemd/systemd-udevd"
    daemon.parent.mkdir(parents=True)
    daemon.write_text("#!/bin/sh\n")
    assert udev.find(str(tmp_path)) is None
    daemon.chmod(0o755)
    assert udev.find(str(tmp_path)) == ("/lib/systemd/systemd-udevd", "notify")
    assert udev.find(str(tmp_path), configured="") is None
    assert udev.find(str(tmp_path), configured="/sbin/udevd") is None
    for name, text in udev.units("/lib/systemd/systemd-udevd", "notify", str(tmp_path)).items():
        u = unit.build(name, f"/x/{name}.toml", tomllib.loads(text), text)
        assert u.type == ("notify" if name == "udevd" else "oneshot")


DEVNAME = """# Device nodes to trigger on-demand module loading.
fuse fuse c10:229
loop loop-control c10:237
tun net/tun c10:200
dm_mod mapper/control c10:236
odd ../escape c10:1
odd /etc/escape c10:1
broken node x10:1
"""


def test_devname_lines():
    assert m.parse_devname(DEVNAME) == [
        ("fuse", "fuse", True, 10, 229), ("loop", "loop-control", True, 10, 237),
        ("tun", "net/tun", True, 10, 200), ("dm_mod", "mapper/control", True, 10, 236)]


def test_static_nodes_are_made_once_with_their_numbers(tmp_path):
    try:   # root, and a file system (and container) that allows device nodes
        os.mknod(tmp_path / "probe", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("no device nodes can be made here (mknod needs root and CAP_MKNOD)")
    (tmp_path / "modules.devname").write_text(DEVNAME)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "fuse").write_text("")   # already there (here a file): left as it is
    assert m.static_nodes(str(tmp_path), str(dev)) == []
    tun = os.stat(dev / "net/tun")
    assert stat.S_ISCHR(tun.st_mode) and stat.S_IMODE(tun.st_mode) == 0o600
    assert (os.major(tun.st_rdev), os.minor(tun.st_rdev)) == (10, 200)
    assert os.stat(dev / "loop-control").st_rdev == os.makedev(10, 237)
    assert (dev / "fuse").read_text() == "" and not (tmp_path / "escape").exists()
    assert m.static_nodes(str(tmp_path), str(dev)) == [], "a second boot: all there"
    assert m.static_nodes(str(tmp_path / "none"), str(dev)) == [], "no modules.devname"
