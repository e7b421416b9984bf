# The benchmarks: each prints figures and ratios against peers measured in the same run.
# Needs root. `make bench BENCH_ARGS=--quick` is faster.
#   bench           vigil vs runit, s6, supervisord, tini (each PID 1 of a namespace)
#   bench-boot      initramfs boot in QEMU: vigil vs busybox init
#   bench-debian    Debian disk boot in QEMU: vigil vs sysvinit vs systemd
#   bench-shutdown  poweroff with 50 services on the Debian disk: vigil vs sysvinit
#   bench-freezers  PyInstaller onedir vs onefile, Nuitka, cx_Freeze

# The peers are installed for the benchmark only, not for `make test`.
BENCH_PACKAGES := runit s6 supervisor tini

BENCH_ARGS ?=

.PHONY: bench bench-boot bench-debian bench-shutdown bench-freezers

bench: deps
	$(call apt_install,$(BENCH_PACKAGES))
	$(PY) bench/supervisors.py $(BENCH_ARGS)

bench-boot: vm-deps
	$(PY) -m bench.boot --runs 3

bench-debian: image
	$(PY) bench/debian_boot.py

bench-shutdown: image
	$(PY) bench/shutdown.py

bench-freezers: deps
	$(PY) bench/freezers.py
