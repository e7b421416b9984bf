"""What each systemd directive becomes in vigil: one handler per directive vigil carries
over, and the reason given for every other one (systemd.unit(5), systemd.service(5),
systemd.exec(5), systemd.kill(5)). Handlers take the translator's State and one Assignment.
"""

from vigil.translate import syntax

# Exec*= directive -> vigil key (ExecStart= is handled by systemd._finish)
COMMAND_KEYS = {"ExecStartPre": "exec_start_pre", "ExecStartPost": "exec_start_post",
                "ExecReload": "exec_reload", "ExecStop": "exec_stop",
                "ExecStopPost": "exec_stop_post"}
TYPES = {"simple": "simple", "exec": "simple", "idle": "simple", "notify": "notify",
         "oneshot": "oneshot", "forking": "forking", "dbus": "simple",
         "notify-reload": "notify"}
RESTARTS = {"no": "never", "always": "always", "on-success": "on-success",
            "on-failure": "on-failure", "on-abnormal": "on-abnormal",
            "on-abort": "on-abort", "on-watchdog": "on-watchdog"}
SIZE_LIMITS = ("as", "core", "data", "fsize", "memlock", "msgqueue", "rss", "stack")
NO_STOP_LIMIT = 86400   # vigil has no unlimited stop timeout: a day stands for infinity


IGNORED = object()


def _parse(st, a, parse, *args):
    """parse(*args), or IGNORED (noted) where systemd would ignore the assignment."""
    try:
        return parse(*args)
    except ValueError as e:
        st.note(a, f"ignored: {e}")
        return IGNORED


def _scalar(section: str, key: str, convert=None):
    """Directive -> one vigil key; the last assignment wins, an empty one resets it."""
    def handle(st, a):
        if not a.value:
            return st.reset(section, key)
        value = _parse(st, a, convert, a.value) if convert else st.spec(a, a.value)
        if value is not IGNORED:
            st.set(a, section, key, value)
    return handle


def _list(section: str, key: str, split=str.split, each=None):
    """Directive -> a list key; assignments add to it, an empty one resets it."""
    def handle(st, a):
        if not a.value:
            return st.reset(section, key)
        words = _parse(st, a, split, a.value)
        if words is IGNORED:
            return
        values = [st.spec(a, w) for w in words]
        if each:
            values = [v for v in (_parse(st, a, each, v) for v in values) if v is not IGNORED]
        st.add(a, section, key, values)
    return handle


def _deps(key: str):
    """Requires= and friends. systemd cannot reset a dependency list either."""
    def handle(st, a):
        if not a.value:
            st.note(a, "an empty assignment resets no dependency (nor does it in systemd)")
            return
        words = [st.spec(a, w) for w in a.value.split()]
        # A .mount is a file system: vigil waits for it through requires_mounts (a unit of
        # its own only while stage 1 could not mount it), whatever the dependency's kind.
        mounts = [w for w in words if w.endswith(".mount") and key in MOUNT_ORDERING]
        if mounts:
            from vigil.unit import mount_point
            st.add(a, "unit", "requires_mounts", [mount_point(m) for m in mounts])
        names = [st.dependency(a, w) for w in words if w not in mounts]
        st.add(a, "unit", key, [n for n in names if n])
    return handle


MOUNT_ORDERING = ("requires", "wants", "after", "requisite", "part_of")


def _condition(key: str):
    """Condition*=/Assert*=: an empty one resets all of its kind, as systemd does."""
    group = ("assert_path_exists",) if key == "assert_path_exists" else (
        "condition_path_exists", "condition_path_is_directory", "condition_file_not_empty",
        "condition_file_is_executable")

    def handle(st, a):
        if not a.value:
            st.reset("unit", *group)
            return
        st.add(a, "unit", key, [st.spec(a, a.value)])
    return handle


def _exec(st, a):
    if not a.value:
        st.commands.pop(a.key, None)
        return
    lines = _parse(st, a, syntax.command_lines, a.value)
    for cmd in lines if lines is not IGNORED else ():
        if cmd.ambient:
            st.note(a, "!!: credentials are applied (the kernel has ambient capabilities)")
        st.commands.setdefault(a.key, []).append((cmd, a))


def _type(st, a):
    kind = TYPES.get(a.value)
    if kind is None:
        st.note(a, f"ignored: unknown type (one of {', '.join(TYPES)})")
        return
    if a.value == "dbus":
        st.note(a, "ready once started: vigil does not watch the bus for BusName=")
    elif a.value == "notify-reload":
        st.note(a, "notify; a reload runs ExecReload= (no SIGHUP reload protocol)")
    st.type = (kind, a)


def _number(seconds: float) -> float | int:
    """Whole seconds as an int, so the TOML reads 90 rather than 90.0."""
    seconds = round(seconds, 6)
    return int(seconds) if seconds == int(seconds) else seconds


def _seconds_of(text: str) -> float | int:
    """A time span in seconds; infinity is 0, vigil's "no limit"."""
    value = syntax.timespan(text)
    return 0 if value == syntax.INFINITY else _number(value)


def _timeout(*keys: str):
    def handle(st, a):
        if not a.value:
            return st.reset("service", *keys)
        seconds = _parse(st, a, syntax.timespan, a.value)
        for key in keys if seconds is not IGNORED else ():
            if key == "stop_timeout" and seconds in (0, syntax.INFINITY):
                st.note(a, f"no stop limit: stop_timeout = {NO_STOP_LIMIT} (a day)")
                st.set(a, "service", key, NO_STOP_LIMIT)
            else:
                st.set(a, "service", key, 0 if seconds == syntax.INFINITY
                       else _number(seconds))
    return handle


def _restart_sec(st, a):
    if not a.value:
        return st.reset("service", "restart_delay", "restart_delay_max")
    delay = _parse(st, a, _seconds_of, a.value)
    if delay is not IGNORED:
        st.set(a, "service", "restart_delay", delay)
        st.set(a, "service", "restart_delay_max", delay)   # systemd waits the same each time




def _choice(key: str, table: dict):
    def handle(st, a):
        if a.value not in table:
            st.note(a, f"ignored: expected one of {', '.join(table)}")
            return
        st.set(a, "service", key, table[a.value])
    return handle


def _bool(section: str, key: str):
    return _scalar(section, key, syntax.boolean)


def _integer(text: str) -> int:
    if not text.lstrip("+-").isdigit():
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _exit_statuses(key: str):
    def handle(st, a):
        if not a.value:
            st.reset("service", key)
            return
        values = []
        for word in a.value.split():
            values.append(int(word) if word.isdigit() else word.upper())
        st.add(a, "service", key, values)
    return handle


def _working_dir(st, a):
    if not a.value:
        st.reset("service", "working_dir")
        return
    st.set(a, "service", "working_dir", st.spec(a, a.value))


def _pidfile(st, a):
    if not a.value:
        st.reset("service", "pidfile")
        return
    value = st.spec(a, a.value)
    if value and not value.startswith("/"):
        value = "/run/" + value   # systemd makes a relative PIDFile= relative to /run
    st.set(a, "service", "pidfile", value)


def _environment(st, a):
    if not a.value:
        return st.environment.clear()
    words = _parse(st, a, syntax.split, a.value)
    for word in words if words is not IGNORED else ():
        name, eq, value = st.spec(a, word).partition("=")
        if not eq or not name or name[0].isdigit() or not all(
                c.isalnum() or c == "_" for c in name):
            st.note(a, f"{word!r} is not NAME=VALUE: ignored")
            continue
        st.environment[name] = value
        st.positions["service.environment"] = (a.path, a.line)


def _limit_value(name: str, text: str):
    if text == "infinity":
        return "infinity"
    if name == "nice" and text[:1] in "+-":
        return 20 - _integer(text)      # a nice value, as systemd reads it
    if name == "cpu":
        return int(syntax.timespan(text))
    if name == "rttime":
        return int(syntax.timespan(text, "us") * 1_000_000)
    if name in SIZE_LIMITS:
        return syntax.size(text)
    return _integer(text)


def _limit(name: str):
    def handle(st, a):
        if not a.value:
            st.limits.pop(name, None)
            return
        soft, sep, hard = a.value.partition(":")
        values = _parse(st, a, lambda: [_limit_value(name, soft.strip()),
                                        _limit_value(name, hard.strip())]
                        if sep else _limit_value(name, soft.strip()))
        if values is IGNORED:
            return
        if isinstance(values, list) and values[0] == values[1]:
            values = values[0]
        if st._valid(a, "service", "limits", {name: values}):
            st.limits[name] = values
            st.positions["service.limits"] = (a.path, a.line)
    return handle


def _output(st, a):
    st.outputs[a.key] = (a.value, a)


def _alias(st, a):
    if not a.value:
        st.reset("unit", "aliases")
        return
    names = [st.dependency(a, st.spec(a, w)) for w in a.value.split()]
    st.add(a, "unit", "aliases", [n for n in names if n])


def _install(st, a):
    names = [st.dependency(a, st.spec(a, w)) for w in a.value.split()]
    st.install.setdefault(a.key, []).extend(n for n in names if n)


def _directory(key: str):
    def each(value: str) -> str:
        if ":" in value:
            raise ValueError(f"{value!r}: the NAME:LINK form is not carried over")
        return value
    return _list("service", key, each=each)


def _mode(key: str):
    return _scalar("service", key, lambda v: v)


def _signal(st, a):
    value = a.value.upper()
    st.set(a, "service", "stop_signal", int(value) if value.isdigit() else value)


HANDLERS = {
    ("Unit", "Description"): _scalar("unit", "description"),
    ("Unit", "Documentation"): _list("unit", "documentation"),
    ("Unit", "Requires"): _deps("requires"),
    ("Unit", "BindsTo"): _deps("requires"),
    ("Unit", "Requisite"): _deps("requisite"),
    ("Unit", "Wants"): _deps("wants"),
    ("Unit", "PartOf"): _deps("part_of"),
    ("Unit", "After"): _deps("after"),
    ("Unit", "Before"): _deps("before"),
    ("Unit", "Conflicts"): _deps("conflicts"),
    ("Unit", "ConditionPathExists"): _condition("condition_path_exists"),
    ("Unit", "ConditionPathIsDirectory"): _condition("condition_path_is_directory"),
    ("Unit", "ConditionFileNotEmpty"): _condition("condition_file_not_empty"),
    ("Unit", "ConditionFileIsExecutable"): _condition("condition_file_is_executable"),
    ("Unit", "AssertPathExists"): _condition("assert_path_exists"),
    ("Unit", "RequiresMountsFor"): _list("unit", "requires_mounts"),
    ("Unit", "StartLimitIntervalSec"): _scalar("service", "start_limit_interval", _seconds_of),
    ("Unit", "StartLimitBurst"): _scalar("service", "start_limit_burst", _integer),
    ("Service", "StartLimitInterval"): _scalar("service", "start_limit_interval",
                                               _seconds_of),
    ("Service", "StartLimitBurst"): _scalar("service", "start_limit_burst", _integer),
    ("Service", "Type"): _type,
    ("Service", "RemainAfterExit"): _bool("service", "remain_after_exit"),
    ("Service", "ExecStart"): _exec,
    **{("Service", d): _exec for d in COMMAND_KEYS},
    ("Service", "Restart"): _choice("restart", RESTARTS),
    ("Service", "RestartSec"): _restart_sec,
    ("Service", "TimeoutStartSec"): _timeout("start_timeout"),
    ("Service", "TimeoutStopSec"): _timeout("stop_timeout"),
    ("Service", "TimeoutSec"): _timeout("start_timeout", "stop_timeout"),
    ("Service", "KillMode"): _choice("kill_mode", {m: m for m in (
        "control-group", "process", "mixed", "none")}),
    ("Service", "KillSignal"): _signal,
    ("Service", "SendSIGKILL"): _bool("service", "send_sigkill"),
    ("Service", "SuccessExitStatus"): _exit_statuses("success_exit_status"),
    ("Service", "RestartPreventExitStatus"): _exit_statuses("restart_prevent_exit_status"),
    ("Service", "User"): _scalar("service", "user"),
    ("Service", "Group"): _scalar("service", "group"),
    ("Service", "SupplementaryGroups"): _list("service", "supplementary_groups"),
    ("Service", "WorkingDirectory"): _working_dir,
    ("Service", "RootDirectory"): _scalar("service", "root_directory"),
    ("Service", "Environment"): _environment,
    ("Service", "EnvironmentFile"): _list("service", "environment_file", split=lambda v: [v]),
    ("Service", "UMask"): _scalar("service", "umask", lambda v: v),
    ("Service", "Nice"): _scalar("service", "nice", _integer),
    ("Service", "PIDFile"): _pidfile,
    ("Service", "RuntimeDirectory"): _directory("runtime_directory"),
    ("Service", "StateDirectory"): _directory("state_directory"),
    ("Service", "LogsDirectory"): _directory("logs_directory"),
    ("Service", "CacheDirectory"): _directory("cache_directory"),
    ("Service", "RuntimeDirectoryMode"): _mode("runtime_directory_mode"),
    ("Service", "StateDirectoryMode"): _mode("state_directory_mode"),
    ("Service", "LogsDirectoryMode"): _mode("logs_directory_mode"),
    ("Service", "CacheDirectoryMode"): _mode("cache_directory_mode"),
    ("Service", "StandardOutput"): _output,
    ("Service", "StandardError"): _output,
    ("Service", "NotifyAccess"): _choice("notify_access", {m: m for m in (
        "main", "exec", "all", "none")}),
    ("Service", "WatchdogSec"): _scalar("service", "watchdog", _seconds_of),
    ("Install", "WantedBy"): _install,
    ("Install", "RequiredBy"): _install,
    ("Install", "Alias"): _alias,
}
HANDLERS.update({("Service", "Limit" + n.upper()): _limit(n) for n in (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")})


# --- outputs ----------------------------------------------------------------------------
def _log_mode(value: str) -> tuple[str, str]:
    """StandardOutput= value -> (vigil log, what is not carried over or "")."""
    for prefix in ("file:", "append:", "truncate:"):
        if value.startswith(prefix):
            why = {"file:": "vigil appends to the file (systemd writes it from the start)",
                   "truncate:": "vigil appends to the file (systemd empties it first)",
                   "append:": ""}[prefix]
            return "append:" + value[len(prefix):], why
    if value in ("journal", "syslog", "kmsg", "inherit"):
        return "file", ""
    if value in ("journal+console", "syslog+console", "kmsg+console"):
        return "file", "the copy on the console is not made: vigil's log file only"
    if value == "null":
        return "null", ""
    if value in ("tty", "console"):
        return "console", ""
    return "file", f"{value}: not carried over, output goes to vigil's log file"


def finish_outputs(st) -> None:
    """vigil has one log for both streams: StandardOutput= decides it."""
    out = st.outputs.get("StandardOutput")
    err = st.outputs.get("StandardError")
    mode = "file"
    if out:
        mode, why = _log_mode(st.spec(out[1], out[0]))
        if why:
            st.note(out[1], why)
        if mode != "file":
            st.set(out[1], "service", "log", mode)
    if err and err[0] not in ("", "inherit") and _log_mode(err[0])[0] != mode:
        st.note(err[1], "not carried over: vigil has one log for stdout and stderr, "
                "StandardOutput= decides it")


# --- everything else --------------------------------------------------------------------
SANDBOX = set("""ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateNetwork
PrivateUsers PrivateIPC PrivateMounts NoNewPrivileges CapabilityBoundingSet
AmbientCapabilities ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths
TemporaryFileSystem BindPaths BindReadOnlyPaths ProtectKernelTunables ProtectKernelModules
ProtectKernelLogs ProtectControlGroups ProtectClock ProtectHostname ProtectProc ProcSubset
RestrictNamespaces RestrictRealtime RestrictSUIDSGID RestrictAddressFamilies
RestrictFileSystems LockPersonality MemoryDenyWriteExecute SystemCallFilter
SystemCallArchitectures SystemCallErrorNumber SystemCallLog DevicePolicy DeviceAllow
IPAddressAllow IPAddressDeny RemoveIPC KeyringMode SecureBits ReadWriteDirectories
ReadOnlyDirectories InaccessibleDirectories NetworkNamespacePath IPCNamespacePath
AppArmorProfile SELinuxContext SmackProcessLabel DynamicUser PrivateTmpEx
RootImage RootImageOptions MountImages ExtensionImages MountAPIVFS ProtectSystemEx""".split())
CGROUPS = set("""Slice Delegate CPUAccounting CPUWeight StartupCPUWeight CPUQuota
CPUQuotaPeriodSec AllowedCPUs AllowedMemoryNodes MemoryAccounting MemoryMin MemoryLow
MemoryHigh MemoryMax MemorySwapMax MemoryLimit TasksAccounting TasksMax IOAccounting
IOWeight StartupIOWeight IODeviceWeight IOReadBandwidthMax IOWriteBandwidthMax
IOReadIOPSMax IOWriteIOPSMax BlockIOAccounting BlockIOWeight CPUShares ManagedOOMSwap
ManagedOOMMemoryPressure ManagedOOMPreference OOMPolicy DisableControllers
IPAccounting""".split())
JOURNAL = set("""SyslogIdentifier SyslogFacility SyslogLevel SyslogLevelPrefix LogLevelMax
LogExtraFields LogRateLimitIntervalSec LogRateLimitBurst LogNamespace""".split())
# Directives whose value here is what vigil does anyway.
NO_EFFECT = {
    "DefaultDependencies": None,   # any value: vigil adds no implicit dependencies
    "GuessMainPID": "yes", "IgnoreSIGPIPE": "no", "NoNewPrivileges": "no",
    "PrivateTmp": "no", "PrivateDevices": "no", "PrivateNetwork": "no", "ProtectHome": "no",
    "ProtectSystem": "no", "SendSIGHUP": "no", "TTYReset": "no",
    "StandardInput": "null", "Delegate": "no", "DynamicUser": "no",
}


def not_carried(key: str, value: str) -> str:
    """Why a directive without a handler does nothing under vigil."""
    if key.startswith("X-"):
        return "no effect: X- settings are for other programs"
    if key in NO_EFFECT:
        expect = NO_EFFECT[key]
        if key == "DefaultDependencies":
            return "no effect under vigil: it adds no implicit dependencies (stage 1 is " \
                   "done before any unit starts, stage 3 after every unit stopped)"
        try:
            same = syntax.boolean(value) == syntax.boolean(expect) \
                if expect in ("yes", "no") else value == expect
        except ValueError:
            same = False
        if same:
            return "no effect under vigil (what it does anyway)"
    if key == "DynamicUser":
        return "not carried over: the service runs as User= (root if unset), not as a " \
               "dynamic user"
    if key in SANDBOX:
        return "not carried over: sandboxing (vigil has no namespaces, capabilities or " \
               "seccomp filters)"
    if key in CGROUPS:
        return "not carried over: resource control needs cgroups, a non-goal"
    if key in JOURNAL:
        return "not carried over: journal settings (vigil writes its own log files)"
    if key == "IgnoreSIGPIPE":
        return "not carried over: vigil starts services with SIGPIPE at its default"
    return "not carried over"
