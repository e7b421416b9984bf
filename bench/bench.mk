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

# Reliability (the README's "Reliability" section). Need root.
#   bench-soak      10 minutes of churn; PID 1's Pss, fds and threads must stay flat
#   bench-fuzz      the property tests with 20,000 examples each; how many inputs were tried
#   bench-flood     the log flood fault test for 60 s instead of 5
SOAK_MINUTES ?= 10
FUZZ_EXAMPLES ?= 20000

.PHONY: bench-soak bench-fuzz bench-flood

bench-soak: deps
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

bench-fuzz: deps
	$(PY) bench/fuzz.py --examples $(FUZZ_EXAMPLES)

bench-flood: deps
	VIGIL_FLOOD_SECONDS=60 $(PY) -m pytest -q -p no:cacheprovider tests/ns/test_faults.py -k flood
