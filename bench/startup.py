"""Start-up cost of glacierd's commands, in CPU-seconds (walls are noisy on two
shared cores), beside the interpreter's own floor, with the slowest imports.

    python bench/startup.py [--runs 10]

Measures `python -c pass`, `glacierd --help`, `glacierd status` on a small
store (a config with only [state]), a 1-byte `glacierd upload` to an
emulator process and `glacierd restore --wait` of that file; each the
minimum over the runs of user + system CPU of the child. Then lists the
ten slowest imports (`-X importtime`, cumulative) of `--help` and `status`.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import start_emulator

GLACIERD = [sys.executable, "-m", "glacierd.cli"]


def cpu_of(command: list[str], env: dict[str, str] | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slowest_imports(command: list[str], count: int = 10) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", *command[1:]],
                         capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line[12:].split("|")
        # Nested imports are indented one space below their importer; list glacierd's
        # own modules and the top-level imports of everything else.
        depth = len(name) - len(name.lstrip(" ")) - 1
        if depth == 0 or name.strip().startswith("glacierd"):
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        emu, url = start_emulator(tmp / "emu")
        try:
            cfg = tmp / "c.toml"
            cfg.write_text(f'[aws]\nendpoint_url = "{url}"\naccess_key_id = "GLACIERDEMULATOR"\n'
                           'secret_access_key = "glacierd-emulator-secret-key"\n'
                           f'[vault]\nname = "b"\ncreate = true\n[state]\ndir = "{tmp / "s"}"\n')
            state_only = tmp / "state.toml"
            state_only.write_text(f'[state]\ndir = "{tmp / "s"}"\n')
            subprocess.run([*GLACIERD, "--config", str(cfg), "db", "upgrade"], check=True,
                           stdout=subprocess.DEVNULL)
            one = tmp / "one.txt"
            one.write_bytes(b"x")
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "glacierd --help": [*GLACIERD, "--help"],
                "glacierd status": [*GLACIERD, "--config", str(state_only), "status"],
            }
            results = {label: min(cpu_of(cmd) for _ in range(args.runs))
                       for label, cmd in cases.items()}
            uploads = []
            for i in range(args.runs):
                one.write_bytes(b"x" * (i + 1))  # a new version each time: a real upload
                uploads.append(cpu_of([*GLACIERD, "--config", str(cfg), "upload", str(one)]))
            results["glacierd upload (1 byte)"] = min(uploads)
            # Its newest version back, each time to a new folder: a retrieval job
            # (ready at once on the emulator), a download, its rows and events.
            restores = [cpu_of([*GLACIERD, "--config", str(cfg), "restore", str(one), "--wait",
                                "--to", str(tmp / f"back-{i}")]) for i in range(args.runs)]
            results["glacierd restore (1 file)"] = min(restores)
            print(f"CPU-seconds, best of {args.runs} (user + system of the child):")
            for label, seconds in results.items():
                print(f"  {label:<28}{seconds * 1000:>8.0f} ms")
            for label in ("glacierd --help", "glacierd status"):
                print(f"slowest imports of {label} (cumulative microseconds):")
                for us, module in slowest_imports(cases[label]):
                    print(f"  {us:>9}  {module}")
        finally:
            emu.terminate()
            emu.wait()


if __name__ == "__main__":
    main()
