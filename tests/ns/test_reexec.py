"""Re-exec in place: services keep their pids and their logging, the socket stays up."""

import json
import os
import signal
import time

import pytest

pytestmark = pytest.mark.ns


def test_reexec_keeps_services_logs_and_socket(vigil):
    vigil.unit("ticker", """[service]
exec = ["/bin/sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"]
""")
    vigil.unit("crasher", """[service]
exec = ["/bin/sh", "-c", "sleep 0.5; exit 1"]
restart_delay = 0.05
start_limit_burst = 100
""")
    vigil.unit("waiting", """[service]
exec = ["/bin/sleep", "1000"]
restart_delay = 30
""")
    vigil.start()
    before = {n: vigil.wait_state(n, "running") for n in ("ticker", "waiting")}
    os.kill(vigil.host_pid(), signal.SIGUSR2)  # no effect on state; just exercise the dump
    time.sleep(0.5)
    r = vigil.ctl("reexec")
    assert r.returncode == 0, r.stderr
    info = vigil.wait_for(lambda: (v := json.loads(vigil.ctl("--json", "version").stdout))
                          .get("reexecs") == 1 and v, what="the re-exec'd vigil")
    assert info["pid"] == 1
    for name, old in before.items():
        now = vigil.status(name)
        assert now["pid"] == old["pid"] and now["state"] == "running", name
    # logging goes on through the same pipe, with no line lost around the exec
    def ticks() -> list[int]:
        lines = vigil.ctl("logs", "ticker", "-n", "0", check=True).stdout.splitlines()
        return [int(x.rsplit(" ", 1)[1]) for x in lines]
    seen = vigil.wait_for(lambda: len(t := ticks()) > 20 and t, what="ticks after the exec")
    assert seen == list(range(len(seen)))
    # reaping and restarts still work: the crasher keeps being restarted
    restarts = vigil.status("crasher")["restarts"]
    vigil.wait_for(lambda: vigil.status("crasher")["restarts"] > restarts, what="a restart")
    assert "resumed after re-exec #1" in vigil.console.read_text()
    # and a second re-exec works too
    vigil.ctl("reexec", check=True)
    vigil.wait_for(lambda: json.loads(vigil.ctl("--json", "version").stdout)
                   .get("reexecs") == 2, what="a second re-exec")
    assert vigil.status("ticker")["pid"] == before["ticker"]["pid"]
