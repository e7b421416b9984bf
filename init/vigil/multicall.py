"""The frozen program's entry point: one binary, many names (as busybox does).

Invoked as vigilctl, poweroff, reboot, halt, shutdown, telinit or runlevel it is the
client; under any other name (vigil, init) it is the init itself.
"""

import os
import sys

from vigil import CLIENT_NAMES


def main() -> None:
    name = os.path.basename(sys.argv[0])
    if name in CLIENT_NAMES:
        from vigil import ctl
        sys.exit(ctl.main())
    from vigil import main as init_main
    sys.exit(init_main.main())


if __name__ == "__main__":
    main()
