"""What the bench scripts share: an emulator process, and a child's CPU."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ACCESS, SECRET = "GLACIERDEMULATOR", "glacierd-emulator-secret-key"


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m glacierd.emulator`` on a free port; (process, endpoint URL)."""
    emu = subprocess.Popen([sys.executable, "-m", "glacierd.emulator", "--port", "0",
                            "--data-dir", str(data_dir), *extra],
                           stdout=subprocess.PIPE, text=True)
    assert emu.stdout is not None
    return emu, emu.stdout.readline().strip()


def child_cpu(command: list[str]) -> tuple[float, float]:
    """Run ``command``; (wall seconds, user + system CPU-seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def process_cpu(pid: int) -> float:
    """User + system seconds a live process has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
