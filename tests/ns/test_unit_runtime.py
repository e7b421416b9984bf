"""The unit keys real daemons need, with real processes: vigil as PID 1 of a namespace."""

import json
import os
import pwd
import socket
import time

import pytest

pytestmark = pytest.mark.ns


def test_a_failing_pre_start_command_is_shown_and_the_main_never_runs(vigil):
    vigil.unit("sshd", """[service]
exec_start_pre = ["/bin/true", "/bin/sh -c 'echo config broken; exit 255'"]
exec = ["/bin/sh", "-c", "touch $OUT/main-ran; exec sleep 1000"]
restart = "never"
""")
    vigil.start()
    st = vigil.wait_state("sshd", "failed")
    assert st["why"]["text"] == ("exited: exec_start_pre /bin/sh -c echo config broken; "
                                 "exit 255: exit 255")
    assert not (vigil.out / "main-ran").exists()
    assert "config broken" in vigil.ctl("logs", "sshd").stdout


def test_runtime_directory_belongs_to_the_user_while_running_and_goes_after_stop(vigil):
    name = f"vigil-test-{os.getpid()}"
    vigil.unit("daemon", f"""[service]
exec = ["/bin/sh", "-c", "echo dir=$RUNTIME_DIRECTORY; exec sleep 1000"]
user = "nobody"
runtime_directory = ["{name}"]
runtime_directory_mode = "0750"
""")
    vigil.start()
    vigil.wait_state("daemon", "running")
    path = f"/run/{name}"
    vigil.wait_for(lambda: f"dir={path}" in vigil.ctl("logs", "daemon").stdout,
                   what="the service's RUNTIME_DIRECTORY")
    st = os.stat(path)
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid and st.st_mode & 0o777 == 0o750
    vigil.ctl("stop", "daemon", check=True)
    vigil.wait_state("daemon", "stopped")
    assert not os.path.exists(path)


def test_a_condition_that_fails_gives_skipped_and_its_dependents_start(vigil):
    vigil.unit("sshd", f"""[unit]
condition_path_exists = ["!{vigil.out}"]
[service]
exec = ["/bin/sleep", "1000"]
""")
    vigil.unit("after-sshd", '[unit]\nrequires = ["sshd"]\n[service]\n'
               'exec = ["/bin/sleep", "1001"]\n')
    vigil.start()
    st = vigil.wait_state("sshd", "skipped")
    assert st["why"]["text"] == f"condition failed: condition_path_exists !{vigil.out}"
    assert st["pid"] is None
    vigil.wait_state("after-sshd", "running")


def test_reload_unit_runs_exec_reload_with_mainpid(vigil):
    vigil.unit("sshd", """[service]
exec = ["/bin/sh", "-c", "trap 'echo hup >> $OUT/hups' HUP; while :; do sleep 0.1; done"]
exec_reload = ["/bin/sh -c 'echo checked > $OUT/checked'", "/bin/kill -HUP $MAINPID"]
expand_environment = true
""")
    vigil.unit("plain", """[service]
exec = ["/bin/sh", "-c", "trap 'echo hup >> $OUT/plain-hups' HUP; while :; do sleep 0.1; done"]
""")
    vigil.start()
    vigil.wait_state("sshd", "running")
    vigil.wait_state("plain", "running")
    r = vigil.ctl("reload", "sshd", "plain", check=True)
    assert "sshd: reloading (exec_reload)" in r.stdout and "plain: reloading (SIGHUP)" in r.stdout
    vigil.wait_for(lambda: (vigil.out / "hups").exists(), what="sshd's HUP")
    vigil.wait_for(lambda: (vigil.out / "plain-hups").exists(), what="plain's HUP")
    assert (vigil.out / "checked").read_text() == "checked\n"
    assert vigil.state("sshd") == "running"
    assert vigil.ctl("reload", "ghost").returncode == 4


def test_exec_stop_and_exec_stop_post(vigil):
    vigil.unit("db", """[service]
exec = ["/bin/sh", "-c", "trap 'echo term >> $OUT/events; exit 0' TERM; \
while :; do sleep 0.1; done"]
exec_stop = ["/bin/sh -c 'echo stop $MAINPID >> $OUT/events; kill $MAINPID'"]
exec_stop_post = ["/bin/sh -c 'echo post >> $OUT/events'"]
expand_environment = true
""")
    vigil.start()
    pid = vigil.wait_state("db", "running")["pid"]
    vigil.ctl("stop", "db", check=True)
    vigil.wait_state("db", "stopped")
    assert (vigil.out / "events").read_text().split("\n")[:3] == [f"stop {pid}", "term", "post"]


def test_environment_file_and_expansion(vigil):
    (vigil.out / "defaults").write_text('# options\nOPTS="-a -b"\nexport NAME=web\n')
    vigil.unit("job", f"""[service]
type = "oneshot"
environment_file = ["{vigil.out}/defaults", "-/nonexistent/file"]
exec = "/bin/sh -c 'printf %s: \\"$0\\" \\"$@\\"; echo' ${{NAME}}d $OPTS"
expand_environment = true
""")
    vigil.start()
    vigil.wait_state("job", "done")
    line = vigil.ctl("logs", "job", check=True).stdout.splitlines()[-1].split(" ", 2)[2]
    assert line == "webd:-a:-b:", "${NAME} inside a word; a lone $OPTS split into words"


def test_notify_from_a_process_outside_the_service_is_ignored(vigil):
    vigil.unit("db", '[service]\ntype = "notify"\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("db", "starting")
    path = os.path.join(os.path.dirname(vigil.sock), "notify", "db")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1\nSTATUS=forged", path)
        s.sendto(b"STATUS=" + b"x" * 8000, path)  # oversized: ignored whoever sends it
    time.sleep(0.5)
    st = vigil.status("db")
    assert st["state"] == "starting" and st["status"] == "", "not the service's own process"
    assert vigil.proc.poll() is None


def test_a_masked_or_missing_start_is_refused_clearly(vigil):
    vigil.unit("web", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("web", "running")
    r = vigil.ctl("reload", "web")
    assert r.returncode == 0 and "web: reloading (SIGHUP)" in r.stdout
    listing = json.loads(vigil.ctl("--json", "list", check=True).stdout)
    assert listing[0]["origin"] == "toml"


def test_a_pending_mount_holds_up_only_what_needs_it(vigil):
    # srv-data.mount stands in for a mount unit stage 1 writes for a disk that is not
    # there yet (here its "device" is a file the test creates later).
    device = vigil.out / "device"
    vigil.unit("srv-data.mount", f"""[service]
type = "oneshot"
remain_after_exit = true
exec = ["/bin/sh", "-c", "while [ ! -e {device} ]; do sleep 0.05; done"]
start_timeout = 0
""")
    vigil.unit("web", '[unit]\nrequires_mounts = ["/srv/data/www"]\n'
               '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("getty", '[service]\nexec = ["/bin/sleep", "1001"]\n')
    # and one for a swap device that is not there: nothing waits for it
    vigil.unit("dev-vdz.swap", '[service]\ntype = "oneshot"\nremain_after_exit = true\n'
               'exec = ["/bin/sleep", "1002"]\nstart_timeout = 0\n')
    vigil.start()
    vigil.wait_state("getty", "running")
    time.sleep(0.5)
    st = vigil.status("web")
    assert st["state"] == "starting"
    assert st["why"]["text"] == "waiting for srv-data.mount (starting)"
    summary = vigil.ctl("status").stdout
    assert "mount pending: srv-data.mount: oneshot running; waited for by web" in summary
    assert "swap pending: dev-vdz.swap: oneshot running" in summary
    device.write_text("")
    vigil.wait_state("srv-data.mount", "running")
    vigil.wait_state("web", "running")
