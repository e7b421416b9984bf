# vigil's verbs. `make test` sets up everything it needs on a fresh Debian machine.
# Downloads (kernel package, images) are cached outside the repo in $(CACHE).

PYTHON  ?= /usr/bin/python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
CACHE   ?= $(HOME)/.cache/vigil
export VIGIL_CACHE := $(CACHE)

# Debian packages the tests and builds need; vm/vm.mk and bench/bench.mk add theirs.
APT_PACKAGES := python3 python3-venv python3-dev util-linux procps

.PHONY: all deps apt venv test test-unit test-ns lint bench clean

all: deps

include vm/vm.mk
include vm/image.mk
-include bench/bench.mk

# $(call apt_install,PACKAGES): installs only what is missing, so a second run is quick.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "apt-get install $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        -o DPkg::Lock::Timeout=600 $$missing; \
	fi
endef

apt:
	$(call apt_install,$(APT_PACKAGES))

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,freeze]'
	touch $@

venv: $(VENV)/.stamp

deps: apt venv

test-unit: deps
	$(PY) -m pytest -q tests/unit

test-ns: deps
	$(PY) -m pytest -q tests/ns

test: deps vm-deps
	$(PY) -m pytest -q tests

lint: deps
	$(VENV)/bin/ruff check init tests bench vm initramfs pkg

clean:
	rm -rf build dist $(VENV) .pytest_cache

# The Debian package (pkg/deb.py): the frozen vigil, units, man pages, GRUB entry.
APT_PACKAGES += dpkg-dev lintian man-db fdisk
DEB := build/vigil_$(shell sed -n 's/^VERSION = "\(.*\)"/\1/p' init/vigil/__init__.py)_amd64.deb
PKG_SRC := $(wildcard pkg/* man/*)

.PHONY: deb grub-image

deb: $(DEB)

$(DEB): $(FROZEN) $(PKG_SRC) units/*.toml
	$(PY) pkg/deb.py -o build

# The GRUB-booted Debian disk with the .deb installed (vm/grubdisk.py; cached).
grub-image: deb
	$(PY) -m vm.grubdisk --deb $(DEB)
