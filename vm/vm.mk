# The VM harness's verbs; included by the top Makefile, which defines PY, CACHE and deps.
# Everything here is cached: a second `make test` fetches and freezes nothing again.

APT_PACKAGES += qemu-system-x86 busybox-static kmod cpio

FROZEN       := build/frozen/vigil/vigil
HELLO        := build/frozen/hello/hello
INITRAMFS    := build/initramfs.cpio.gz
INITRAMFS_BB := build/initramfs-busybox.cpio.gz
VIGIL_SRC    := $(shell find init/vigil -name '*.py' 2>/dev/null)
IMAGE_SRC    := $(wildcard initramfs/*.py units/*.toml)
# The names the frozen binary answers to (see init/vigil/multicall.py); the client's names
# go to the client program beside it, which starts faster.
SBIN_NAMES   := vigil
CLIENT_NAMES := vigilctl poweroff reboot halt shutdown telinit runlevel

.PHONY: vm-deps kernel build initramfs boot boot-busybox install

# `make test` depends on this: kernel, frozen programs and both images.
vm-deps: deps kernel build initramfs

kernel: deps
	$(PY) -m vm.kernel

build: $(FROZEN) $(HELLO)

$(FROZEN): $(VIGIL_SRC) init/freeze/freeze.py init/freeze/vigilctl.py | deps
	$(PY) init/freeze/freeze.py vigil

$(HELLO): init/freeze/hello.py init/freeze/freeze.py | deps
	$(PY) init/freeze/freeze.py hello

initramfs: $(INITRAMFS) $(INITRAMFS_BB)

$(INITRAMFS): $(FROZEN) $(IMAGE_SRC)
	$(PY) -m initramfs.build --init vigil -o $@

$(INITRAMFS_BB): $(FROZEN) $(IMAGE_SRC)
	$(PY) -m initramfs.build --init busybox -o $@

# Interactive: the serial console is this terminal; QEMU exits when the guest powers off.
# IMAGE=debian: the Debian disk instead (boot-debian, in vm/image.mk).
ifeq ($(IMAGE),debian)
boot: boot-debian
else
boot: kernel initramfs
	$(PY) -m vm.qemu --initrd $(INITRAMFS)
endif

boot-busybox: kernel initramfs
	$(PY) -m vm.qemu --initrd $(INITRAMFS_BB) --init /sbin/init

# DESTDIR=/some/root to stage; without it this installs into the running system.
install: build
	install -d $(DESTDIR)/usr/lib/vigil/units $(DESTDIR)/sbin
	cp -a build/frozen/vigil/. $(DESTDIR)/usr/lib/vigil/
	for n in $(SBIN_NAMES); do ln -sfn /usr/lib/vigil/vigil $(DESTDIR)/sbin/$$n; done
	for n in $(CLIENT_NAMES); do ln -sfn /usr/lib/vigil/vigilctl $(DESTDIR)/sbin/$$n; done
	for f in units/*.toml; do [ -e "$$f" ] && install -m 644 "$$f" $(DESTDIR)/usr/lib/vigil/units/; done; true
	install -D -m 644 init/lsb/init-functions.d/40-vigil $(DESTDIR)/lib/lsb/init-functions.d/40-vigil
