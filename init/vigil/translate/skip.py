"""Units that systemd or sysvinit need only for their own boot and shutdown, which vigil does
itself (or which must not run under it): they are not imported, and `vigilctl check` lists
them with the reason. Names are vigil names (ssh.service is ssh; a template is NAME@).

The lists come from the unit files of Debian bookworm's systemd and udev packages and the
init.d scripts of initscripts, sysv-rc, udev, kmod and util-linux-extra. A dependency on a
skipped unit becomes a dependency on vigil's own unit where vigil has one (REPLACEMENT),
and is dropped otherwise, with a note.
"""

STAGE1 = "vigil's stage 1 does it before any unit starts"
STAGE3 = "vigil's stage 3 does it"
UDEV = "vigil runs udev itself (its udevd and udev-trigger units)"
GETTY = "vigil has its own getty@ unit"
RESCUE = "vigil's rescue mode (single, telinit 1) does it"

OUTPUT = "vigil captures services' output itself (vigilctl logs)"
FSCK = "vigil checks file systems with fsck when it mounts fstab (stage 1)"
UTMP = "vigil writes the utmp/wtmp boot and shutdown records itself"
NOLOGIN = "/run is a new tmpfs at each boot: there is no /run/nologin to remove"
INITRD = "vigil's initramfs stage does it"
FIRSTBOOT = "a step of systemd's own first boot (or its TPM boot phases)"
AGENTS = "answers systemd's password agents (.path units)"
SYSCTL = "vigil applies sysctl.d and /etc/sysctl.conf itself (stage 1); a second pass " \
    "in another order would undo some of it"

# vigil name -> why it is skipped
SYSTEMD = {
    **dict.fromkeys(("systemd-journald", "systemd-journald@", "systemd-journal-flush"),
                    OUTPUT),
    **dict.fromkeys(("systemd-udevd", "systemd-udev-trigger", "systemd-udev-settle"), UDEV),
    "systemd-tmpfiles-setup": "its --boot --remove is for the boot only: pulled in later by "
                              "a dependency it would empty /tmp on a running system",
    "systemd-tmpfiles-setup-dev": "devtmpfs and udev make the device nodes under vigil",
    "systemd-tmpfiles-clean": "run by a .timer, and timers are out of scope",
    "systemd-modules-load": "vigil loads modules-load.d and /etc/modules itself (stage 1)",
    "systemd-remount-fs": "vigil remounts / as fstab says (stage 1)",
    "systemd-random-seed": "vigil loads and saves the random seed itself",
    "systemd-sysctl": SYSCTL,
    **dict.fromkeys(("systemd-update-utmp", "systemd-update-utmp-runlevel"), UTMP),
    **dict.fromkeys(("systemd-fsck-root", "systemd-fsck@", "systemd-fsckd"), FSCK),
    "systemd-logind": "it needs systemd as PID 1 (it makes session scopes through systemd "
                      "over D-Bus); on a machine without systemd elogind does its job",
    "systemd-user-sessions": NOLOGIN,
    "systemd-initctl": "vigil answers telinit itself",
    **dict.fromkeys(("systemd-halt", "systemd-poweroff", "systemd-reboot", "systemd-kexec",
                     "systemd-exit"), STAGE3),
    **dict.fromkeys(("getty@", "serial-getty@", "autovt@", "container-getty@",
                     "console-getty", "getty-static"), GETTY),
    **dict.fromkeys(("emergency", "rescue"), RESCUE),
    **dict.fromkeys(("initrd-cleanup", "initrd-parse-etc", "initrd-switch-root",
                     "initrd-udevadm-cleanup-db"), INITRD),
    **dict.fromkeys(("systemd-machine-id-commit", "systemd-firstboot", "systemd-pcrphase",
                     "systemd-pcrphase-initrd", "systemd-pcrphase-sysinit"), FIRSTBOOT),
    "systemd-boot-check-no-failures": "it asks systemd for failed units",
    **dict.fromkeys(("systemd-ask-password-console", "systemd-ask-password-wall"), AGENTS),
}

# Targets that name steps of systemd's own boot and shutdown: vigil's stages are those steps.
TARGETS = {name: STAGE1 for name in (
    "sysinit.target", "basic.target", "local-fs.target", "local-fs-pre.target",
    "swap.target", "sockets.target", "timers.target", "paths.target", "slices.target",
    "cryptsetup-pre.target", "veritysetup-pre.target", "integritysetup-pre.target",
    "first-boot-complete.target", "initrd.target", "initrd-fs.target",
    "initrd-root-fs.target", "initrd-root-device.target", "initrd-switch-root.target",
    "initrd-usr-fs.target", "getty-pre.target")}
TARGETS.update({name: STAGE3 for name in (
    "shutdown.target", "umount.target", "final.target", "poweroff.target",
    "reboot.target", "halt.target", "kexec.target", "exit.target", "ctrl-alt-del.target",
    "sigpwr.target", "sleep.target", "suspend.target", "hibernate.target",
    "hybrid-sleep.target", "suspend-then-hibernate.target")})
TARGETS.update({"emergency.target": RESCUE, "rescue.target": RESCUE,
                "getty.target": GETTY, "system-update.target": "systemd's offline updates",
                "system-update-pre.target": "systemd's offline updates"})

INITD = {
    **dict.fromkeys(("mountkernfs.sh", "mountdevsubfs.sh", "mount-configfs", "checkroot.sh",
                     "checkroot-bootclean.sh", "checkfs.sh", "mountall.sh",
                     "mountall-bootclean.sh"), STAGE1),
    **dict.fromkeys(("mountnfs.sh", "mountnfs-bootclean.sh"),
                    "vigil mounts fstab itself (network file systems included)"),
    "hostname.sh": "vigil sets the hostname itself (stage 1)",
    "hwclock.sh": "the kernel sets the clock from the RTC at boot (RTC_HCTOSYS) and "
                  "keeps it when NTP synchronises it, as under systemd, which masks it",
    "udev": UDEV, "kmod": "vigil loads /etc/modules and modules-load.d itself (stage 1)",
    "urandom": "vigil loads and saves the random seed itself",
    "procps": SYSCTL,
    "bootmisc.sh": "vigil writes utmp itself (bootmisc would empty it after vigil's boot "
                   "record) and it would make /run/nologin that nothing removes",
    "rmnologin": NOLOGIN,
    **dict.fromkeys(("halt", "reboot", "sendsigs", "umountfs", "umountnfs.sh", "umountroot"),
                    STAGE3),
    **dict.fromkeys(("killprocs", "single"), RESCUE),
    "rc": "sysvinit's runner of the rc?.d links: vigil reads the links itself",
    "rcS": "sysvinit's runner of the rcS.d links: vigil reads the links itself",
}

# A dependency on one of these means vigil's own unit.
REPLACEMENT = {"systemd-udevd": "udevd", "systemd-udev-trigger": "udev-trigger",
               "systemd-udev-settle": "udev-trigger", "udev": "udevd"}
# ... and an instance of one of these templates means that instance of vigil's getty@.
TEMPLATE_REPLACEMENT = {"getty@": "getty@", "serial-getty@": "getty@", "autovt@": "getty@"}


def replacement(name: str) -> str | None:
    """vigil's own unit standing for the skipped unit `name`, or None."""
    if name in REPLACEMENT:
        return REPLACEMENT[name]
    prefix, at, instance = name.partition("@")
    if at and instance and prefix + "@" in TEMPLATE_REPLACEMENT:
        return TEMPLATE_REPLACEMENT[prefix + "@"] + instance
    return None


def systemd_reason(name: str) -> str | None:
    """Why the systemd unit `name` (vigil name) is skipped, or None."""
    if name in SYSTEMD or name in TARGETS:
        return SYSTEMD.get(name) or TARGETS[name]
    if "@" in name:
        return SYSTEMD.get(name.split("@", 1)[0] + "@")
    return None
