"""The systemd unit as the README installs it: systemd-analyze finds nothing wrong."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
INSTALLED = "/usr/local/bin/glacierd"


def test_the_unit_and_the_readme_name_the_same_command() -> None:
    unit = (ROOT / "systemd" / "glacierd.service").read_text()
    readme = (ROOT / "README.md").read_text()
    starts = [line for line in unit.splitlines() if line.startswith(("ExecStart", "ExecStartPre"))]
    assert starts and all(f"={INSTALLED} " in line for line in starts)
    assert f"ln -s /opt/glacierd/bin/glacierd {INSTALLED}" in readme
    assert "install -m 0640 -g glacierd config.example.toml /etc/glacierd/config.toml" in readme


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    # As installed, /usr/local/bin/glacierd is the venv's entry point: here, ours.
    glacierd = Path(sys.executable).parent / "glacierd"
    assert glacierd.exists()
    unit = tmp_path / "glacierd.service"
    unit.write_text((ROOT / "systemd" / "glacierd.service").read_text()
                    .replace(INSTALLED, str(glacierd)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
