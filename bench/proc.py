"""Process memory from /proc (Linux), for the benchmarks."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List


def children(pid: int) -> List[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> List[int]:
    result, frontier = [], [pid]
    while frontier:
        kids = [c for p in frontier for c in children(p)]
        result += kids
        frontier = kids
    return result


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory_mb(pid: int) -> Dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, kb = line.split(":")[0], int(line.split()[1])
            values["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(kb / 1024, 1)
    return values
