"""vigil's reading of /proc (`vigilctl tree`, the strays found at a stop), on a /proc-like
tree written by the test: names with spaces, parentheses and bytes that are not UTF-8, and
processes that end while they are read."""

from vigil import proctree


def _process(proc, pid, comm: bytes, ppid, pgid, sid, start, cmdline: bytes | None):
    d = proc / str(pid)
    d.mkdir()
    rest = f"S {ppid} {pgid} {sid} " + " ".join(["0"] * 15) + f" {start} 0"
    (d / "stat").write_bytes(b"%d (%s) %s\n" % (pid, comm, rest.encode()))
    if cmdline is not None:
        (d / "cmdline").write_bytes(cmdline)


def test_names_that_are_not_text_and_processes_gone_half_way(tmp_path):
    _process(tmp_path, 1, b"vigil", 0, 1, 1, 5, b"/sbin/vigil\0")
    _process(tmp_path, 40, b"we) ird \xff", 1, 40, 40, 77, b"")  # no cmdline: shown as [comm]
    _process(tmp_path, 41, b"sleep", 40, 40, 40, 78, b"sleep\0\xfe1000\0")
    _process(tmp_path, 42, b"gone", 40, 40, 40, 79, None)   # ended between stat and cmdline
    (tmp_path / "self").mkdir()                              # not a pid
    table = proctree.process_table(str(tmp_path))
    assert table == {1: (0, 1, "/sbin/vigil"), 40: (1, 40, "[we) ird \ufffd]"),
                     41: (40, 40, "sleep \ufffd1000")}
    assert proctree.unit_tree(40, table) == [[40, 0, "[we) ird \ufffd]"],
                                             [41, 1, "sleep \ufffd1000"]]
    stats = proctree.stat_table(str(tmp_path))
    assert stats[40] == (1, 40, 40, 77) and stats[42] == (40, 40, 40, 79)
