"""vigil: a PID 1 init system for Linux."""

VERSION = "0.1.0"
