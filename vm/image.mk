# The Debian test disk and its boot; included by the top Makefile beside vm/vm.mk.
# vm/image.py caches the mmdebstrap tarball and the disks in $(VIGIL_CACHE)/image.

APT_PACKAGES += mmdebstrap e2fsprogs

# vigil's initramfs + the root disk's modules (vm/image.py: ROOT_MODULES).
INITRAMFS_DISK := build/initramfs-disk.cpio.gz

.PHONY: image initramfs-disk boot-debian

# The disks (root + /data) and the initramfs that mounts the root one.
image: deps kernel build initramfs-disk
	$(PY) -m vm.image

initramfs-disk: $(INITRAMFS_DISK)

$(INITRAMFS_DISK): $(FROZEN) $(IMAGE_SRC) vm/image.py | kernel
	$(PY) -m vm.image --initramfs $@

# Interactive, like `make boot`; `make boot IMAGE=debian` lands here too. The guest's
# writes go to a scratch copy, so the cached disk stays as built (tests copy it); WRITE=1
# keeps them. BOOT_INIT=/sbin/init (sysvinit) or BOOT_INIT=/lib/systemd/systemd boots the peers.
BOOT_INIT ?= /sbin/vigil
boot-debian: image
	$(PY) -m vm.qemu --initrd $(INITRAMFS_DISK) --append "root=/dev/vda init=$(BOOT_INIT)" \
	    $$($(PY) -m vm.image | sed 's/^[a-z]* /--disk /') --net \
	    $(if $(WRITE),,--snapshot)
