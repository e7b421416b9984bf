"""Translators of the units a Debian machine already has into vigil's raw unit dicts.

systemd unit files (systemd.py), init.d scripts with an LSB header (initd.py) and the
user's lines of /etc/inittab (inittab.py) become the same {"unit": {...}, "service": {...}}
dict a TOML file gives, plus notes naming file and line for what could not be carried over;
vigil.unit.build validates them as it validates TOML. sources.py finds the files under an
import root and says which units are enabled, masked, aliased, shadowed or skipped.

Everything here is pure or only reads files, and runs in the parsing child: PID 1 never
imports this package.
"""
