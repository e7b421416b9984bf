# The benchmarks: each prints figures and ratios against peers measured in the same run.
# Needs root. `make bench BENCH_ARGS=--quick` is faster.
#   bench           vigil (venv and frozen) vs busybox init, sysvinit, runit, s6, supervisord,
#                   tini (each PID 1 of a namespace; the two inits in a chroot with an inittab)
#   bench-boot      initramfs boot in QEMU: vigil vs busybox init (BOOT_ARGS="--icount 3":
#                   a guest clock that follows the instructions run, rows that repeat)
#   bench-debian    Debian disk boot in QEMU: vigil vs sysvinit vs systemd
#   bench-shutdown  poweroff with 50 services on the Debian disk: vigil vs sysvinit
#   bench-freezers  PyInstaller onedir vs onefile, Nuitka, cx_Freeze
#   bench-plot      `vigilctl analyze plot` screenshot in headless Chromium, bars checked
#                   (PLOT_SVG=build/test/boot.svg: the Debian boot's plot test_package left)

# The peers are installed for the benchmark only, not for `make test`.
BENCH_PACKAGES := runit s6 supervisor tini busybox-static
# sysvinit's init is unpacked from its package rather than installed: installing
# sysvinit-core would replace the host's own init (systemd-sysv on a Debian host).
SYSVINIT_DIR := $(CACHE)/bench/sysvinit-core
SYSVINIT     := $(SYSVINIT_DIR)/sbin/init

BENCH_ARGS ?=
BOOT_ARGS ?=

.PHONY: bench bench-boot bench-debian bench-shutdown bench-freezers bench-plot

bench: deps build $(SYSVINIT)
	$(call apt_install,$(BENCH_PACKAGES))
	$(PY) bench/supervisors.py --sysvinit $(SYSVINIT) $(BENCH_ARGS)

$(SYSVINIT):
	mkdir -p $(SYSVINIT_DIR)/deb
	cd $(SYSVINIT_DIR)/deb && { apt-get download sysvinit-core 2>/dev/null \
	    || { apt-get update -qq && apt-get download sysvinit-core; }; }
	dpkg-deb -x $$(ls -t $(SYSVINIT_DIR)/deb/sysvinit-core_*.deb | head -1) $(SYSVINIT_DIR)
	test -x $@ && touch $@

bench-boot: vm-deps
	$(PY) -m bench.boot --runs 3 $(BOOT_ARGS)

bench-debian: image
	$(PY) bench/debian_boot.py

bench-shutdown: image
	$(PY) bench/shutdown.py

bench-freezers: deps
	$(PY) bench/freezers.py

PLOT_SVG ?=
bench-plot: deps
	$(call apt_install,chromium)
	$(PY) -m pip install -q pillow
	$(PY) bench/plot_screenshot.py $(if $(PLOT_SVG),--svg $(PLOT_SVG))

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
