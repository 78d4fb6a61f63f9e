"""The layout's promises: no shadowed stdlib, pure packages stay pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autopilot import errors

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_platform_dir_has_no_init() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_import_platform_from_repo_root_is_stdlib() -> None:
    got = _run("import platform, sysconfig; print(platform.__file__); print(platform.system())")
    path, system = got.splitlines()
    assert Path(path).parent == Path(sysconfig_stdlib()), path
    assert system  # the real module answers; a namespace package would raise


def sysconfig_stdlib() -> str:
    import sysconfig

    return sysconfig.get_paths()["stdlib"]


@pytest.mark.parametrize("package", ["autopilot.stats", "autopilot.policy"])
def test_pure_packages_import_neither_ray_nor_mlflow(package: str) -> None:
    got = _run(
        f"import sys, {package}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'mlflow')))"
    )
    assert got == "[]", f"{package} pulled in {got}"


def test_every_error_is_an_autopilot_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AutopilotError), name
        assert name in errors.__doc__, f"{name} missing from the tree in errors.py's docstring"


def test_registry_errors_share_a_base() -> None:
    for cls in (errors.VersionNotFound, errors.IntegrityError, errors.TransitionError):
        assert issubclass(cls, errors.RegistryError)
    assert issubclass(errors.NotRunningError, errors.ControlError)
