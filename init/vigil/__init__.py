"""vigil: a PID 1 init system for Linux."""

VERSION = "0.1.0"
# The names the one frozen program answers to as the client (vigil.ctl); under any other
# name it is the init. make install links them all.
SYSV_NAMES = ("poweroff", "reboot", "halt", "shutdown", "telinit", "runlevel")
CLIENT_NAMES = ("vigilctl", *SYSV_NAMES)
