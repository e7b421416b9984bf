"""The frozen program's entry point: one binary, many names (as busybox does).

Invoked as vigilctl, poweroff, reboot, halt, shutdown, telinit or runlevel it is the
client; under any other name (vigil, init) it is the init itself.

The frozen tree also has a client program of its own, `vigilctl` beside `vigil`, built
from init/freeze/vigilctl.py: the same client, in a bundle without the unit parser and
ctypes, so that a `vigilctl status` or a `poweroff` loads only what it needs (see the
README, "Speed"). What that bundle leaves out, it hands to this program (`client_entry`).
"""

import os
import sys

from vigil import CLIENT_NAMES, SYSV_NAMES

# Verbs that need what the client program leaves out (vigil.unit, vigil.graph, the
# translators, ctypes): run by the full program beside it.
FULL_VERBS = ("check", "convert")
# The real-time signals systemd defines for these, which vigil handles the same way.
POWER_SIGNALS = {"halt": 3, "poweroff": 4, "reboot": 5}  # SIGRTMIN + n


def needs_full(name: str, args: list[str]) -> bool:
    """Whether this client command line needs the full program. Saying yes too often
    only costs time (the full program does everything); saying no wrongly would fail."""
    if name in ("poweroff", "reboot", "halt"):
        return "-f" in args or "--force" in args  # reboot(2) at once: through ctypes
    if name in SYSV_NAMES:
        return False
    i = 0
    while i < len(args):  # vigilctl [--socket PATH] [--json] VERB ...: find the verb
        if args[i] == "--socket":
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return args[i] in FULL_VERBS
    return False


def run_client() -> None:
    """vigilctl and the sysvinit names. Ends with os._exit once the output is flushed: a
    client holds nothing that needs the interpreter's teardown, which would cost as much
    as a tenth of the run."""
    from vigil import ctl
    try:
        code = ctl.main()
    except SystemExit as e:  # --help, and usage errors raised as SystemExit
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a closed pipe: the reader went away
            code = code or 1
    os._exit(code)


def signal_pid1(name: str, args: list[str]) -> bool:
    """`poweroff`, `reboot` or `halt` with no option, when PID 1 is this tree's vigil: a
    signal to PID 1 (as systemd's and sysvinit's own commands talk to their init) in place
    of a control request, which would cost the client its socket and JSON modules. Never
    when PID 1 is anything else, or another vigil; False (use the socket) when unsure."""
    if name not in POWER_SIGNALS or args or "VIGIL_SOCKET" in os.environ:
        return False
    import _signal  # the C module: signal.py imports enum
    ours = os.path.join(os.path.dirname(sys.executable), "vigil")
    try:
        if os.readlink("/proc/1/exe") != ours:
            return False
        os.kill(1, _signal.SIGRTMIN + POWER_SIGNALS[name])
    except OSError:  # no /proc, not root: the request says why
        return False
    return True


def client_entry() -> None:
    """The client program's own entry: the fast path, or the full program beside it for
    what this bundle does not have, with the same arguments."""
    name = os.path.basename(sys.argv[0])
    if signal_pid1(name, sys.argv[1:]):
        os._exit(0)
    if needs_full(name, sys.argv[1:]):
        full = os.path.join(os.path.dirname(sys.executable), "vigil")
        # The full program is the client only under a client's name.
        argv0 = sys.argv[0] if name in CLIENT_NAMES else "vigilctl"
        try:
            os.execv(full, [argv0, *sys.argv[1:]])
        except OSError as e:
            sys.stderr.write(f"vigilctl: cannot run {full}: {e.strerror}\n")
            os._exit(1)
    run_client()


def main() -> None:
    name = os.path.basename(sys.argv[0])
    if name in CLIENT_NAMES:
        run_client()
    from vigil import main as init_main
    sys.exit(init_main.main())


if __name__ == "__main__":
    main()
