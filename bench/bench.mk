# The supervisor benchmark: vigil against runit, s6, supervisord and tini, each as
# PID 1 of its own PID namespace. Needs root. `make bench BENCH_ARGS=--quick` is faster.
# The peers are installed for the benchmark only, not for `make test`.
BENCH_PACKAGES := runit s6 supervisor tini

BENCH_ARGS ?=

bench: deps
	$(call apt_install,$(BENCH_PACKAGES))
	$(PY) bench/supervisors.py $(BENCH_ARGS)
