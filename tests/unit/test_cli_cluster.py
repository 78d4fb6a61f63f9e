"""What `autopilot up --address` ships to a cluster it did not start."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopilot import cli


def test_project_runtime_env_ships_this_checkouts_three_packages() -> None:
    env = cli.project_runtime_env()
    dirs = [Path(d) for d in env["py_modules"]]
    assert [d.name for d in dirs] == ["autopilot", "deployments", "jobs"]
    root = Path(cli.__file__).resolve().parents[2]  # the checkout these tests run from
    assert dirs == [root / "platform" / "autopilot", root / "deployments", root / "jobs"]
    assert all((d / "__init__.py").is_file() for d in dirs)


@pytest.mark.parametrize(("env", "file", "expected"), [
    ({"RAY_AUTH_TOKEN": "abc"}, False, True),
    ({}, True, True),
    ({}, False, False),
])
def test_token_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         env: dict[str, str], file: bool, expected: bool) -> None:
    token = tmp_path / "auth_token"
    if file:
        token.write_text("abc\n")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert cli._token_available() is expected
