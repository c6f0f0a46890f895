"""CPU time and memory of a process from /proc (Linux only).

CPU is user + system time from ``/proc/PID/stat`` (fields 14-17), optionally with the
time of children already waited for; memory is ``VmRSS`` / ``VmHWM`` (peak RSS) from
``/proc/PID/status``. Clock ticks are 10 ms on most kernels, which is why scenarios
measure over seconds, not milliseconds.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    user: float
    system: float
    children_user: float = 0.0
    children_system: float = 0.0

    @property
    def total(self) -> float:
        """Own user + system seconds."""
        return self.user + self.system

    @property
    def total_with_children(self) -> float:
        return self.total + self.children_user + self.children_system


def cpu_times(pid: int | str = "self") -> CpuTimes:
    """CPU seconds of ``pid`` (all threads) and of its reaped children."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    utime, stime, cutime, cstime = (int(v) / CLK_TCK for v in fields[11:15])
    return CpuTimes(utime, stime, cutime, cstime)


def cpu_seconds(pids: list[int]) -> float:
    """Sum of own CPU seconds of several processes (a server and its workers)."""
    return sum(cpu_times(pid).total for pid in pids)


def cpu_ns_seconds(pids: list[int]) -> float:
    """CPU seconds of several processes at nanosecond resolution: the sum of every
    live thread's run time in ``/proc/PID/task/TID/schedstat``. Clock ticks (10 ms)
    are too coarse for a cost of a fraction of a ms/s per player over a short window;
    threads that ended since the last reading are missing, so use it for processes
    whose threads live as long as the measurement (servers, relays)."""
    total = 0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # the thread ended between listing and reading
    return total / 1e9


def system_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all CPUs from /proc/stat: a window's steal share
    says how much the hypervisor took away (a shared VM makes CPU time noisier)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total


def busy_and_steal_percent(
    before: tuple[int, int, int], after: tuple[int, int, int]
) -> dict[str, float]:
    """Machine-wide busy % (others included) and steal % between two ``system_ticks``."""
    total = max(1, after[2] - before[2])
    return {
        "machine_busy_percent": round(100 * (after[0] - before[0]) / total, 1),
        "steal_percent": round(100 * (after[1] - before[1]) / total, 1),
    }


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def machine() -> dict[str, object]:
    """What the figures were measured on, for the result line."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loop": _loop_name(),
        "nginx": _nginx_version(),
        "mem_total_mib": _mem_total_mib(),
    }


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return f"uvloop {getattr(uvloop, '__version__', '?')}"


def _nginx_version() -> str:
    try:
        done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"nginx/(\S+)", done.stderr)
    return match.group(1) if match else ""


def _mem_total_mib() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0
