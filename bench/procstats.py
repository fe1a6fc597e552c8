"""/proc readings and percentiles shared by the benchmarks (Linux only)."""

from __future__ import annotations

import os


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _kb_field(path: str, name: str) -> int:
    """The kB figure of the `name:` line of a /proc file; 0 if the process is gone."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_rss_kb(pid: int) -> int:
    return _kb_field(f"/proc/{pid}/status", "VmRSS")


def pss_kb(pid: int) -> int:
    return _kb_field(f"/proc/{pid}/smaps_rollup", "Pss")


def proc_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found += kids
        frontier += kids
    return found
