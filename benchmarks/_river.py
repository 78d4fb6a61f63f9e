"""River, the peer the benchmarks compare against, kept in its own virtual environment.

River's pins need not agree with the project's, so it never goes into the
project's venv: :func:`river_python` creates ``benchmarks/.venv-river`` on first
use (``pip install river==RIVER_VERSION`` from the package registry) and returns
its interpreter. The benchmarks then run River code in a subprocess over
streams they saved to disk, and read the results back as JSON.

Run as a script (``make bench`` does), it only makes sure the environment exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RIVER_VERSION = "0.26.1"
VENV = Path(__file__).resolve().parent / ".venv-river"


def river_python() -> Path:
    """The bench venv's interpreter, with River installed (created on first use)."""
    py = VENV / "bin" / "python"
    if py.exists():
        probe = subprocess.run(
            [str(py), "-c", "import river; print(river.__version__)"],
            capture_output=True, text=True, check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == RIVER_VERSION:
            return py
    print(f"creating {VENV} with river=={RIVER_VERSION} (one-off, about a minute)",
          file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"river=={RIVER_VERSION}"],
        check=True,
    )
    return py


def run_river(code: str, payload: dict[str, Any], timeout: float = 1800.0) -> Any:
    """Run ``code`` under the bench venv with ``payload`` as JSON on stdin.

    ``code`` reads ``json.load(sys.stdin)`` and prints one JSON document,
    which is returned parsed.
    """
    py = river_python()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(code)
        script = fh.name
    try:
        proc = subprocess.run(
            [str(py), script], input=json.dumps(payload), capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    finally:
        Path(script).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"river subprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    print(f"river {RIVER_VERSION} ready at {river_python()}")
