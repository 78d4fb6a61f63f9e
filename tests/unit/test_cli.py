"""The `autopilot` command: parsing, the not-running error, history from the journal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from autopilot import cli
from autopilot.journal import Journal


def test_parser_has_every_subcommand() -> None:
    parser = cli.build_parser()
    for name in ("up", "status", "history", "promote", "rollback", "retrain", "pause",
                 "resume", "set-weights", "down"):
        assert name in cli.SUBCOMMANDS
    args = parser.parse_args(["promote", "churn", "--version", "7", "--reason", "looks good"])
    assert (args.model, args.version, args.reason) == ("churn", "7", "looks good")
    args = parser.parse_args(["up", "-c", "a.yaml", "-c", "b.yaml", "--no-dashboard"])
    assert args.config == ["a.yaml", "b.yaml"] and args.no_dashboard
    args = parser.parse_args(["--state-dir", "/tmp/x", "history", "-m", "churn", "-n", "5"])
    assert args.state_dir == Path("/tmp/x") and args.limit == 5


def test_missing_subcommand_and_bad_option_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["up"])  # --config is required
    assert "--config" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["status"], ["pause", "churn"], ["down"], ["history"]])
def test_not_running_error_says_run_up(argv: list[str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--state-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 3
    assert "no Autopilot stack is running" in err and "autopilot up" in err
    assert str(tmp_path) in err


def test_dead_stack_file_is_not_running(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"ray_address": "127.0.0.1:9",
                                                     "models": ["churn"]}))
    assert cli.main(["--state-dir", str(tmp_path), "status"]) == 3
    assert "does not answer" in capsys.readouterr().err


def test_history_reads_the_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = Journal(tmp_path / "journal.db")
    j.record("churn", "retrain", reasons=["drift high on x1"], outcome="applied", ts=1.7e9)
    j.record("churn", "promote", reasons=["challenger better"], outcome="applied", ts=1.7e9 + 60)
    j.record("other", "pause", reasons=["manual"], outcome="applied", ts=1.7e9 + 90)
    assert cli.main(["--state-dir", str(tmp_path), "history", "--model", "churn"]) == 0
    out = capsys.readouterr().out
    assert "retrain" in out and "promote" in out and "other" not in out
    assert cli.main(["--state-dir", str(tmp_path), "history", "--action", "pause",
                     "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["other"]


def test_parse_weights() -> None:
    assert cli._parse_weights("3=0.9, 4=0.1") == {"3": 0.9, "4": 0.1}
    with pytest.raises(cli.ControlError, match="'x'"):
        cli._parse_weights("3=x")
    with pytest.raises(cli.ControlError, match="VERSION=SHARE"):
        cli._parse_weights("3")


def test_subcommand_registration_is_one_place() -> None:
    @cli.subcommand("zz-test", "a test command")
    def run(args: object) -> int:
        return 7

    try:
        assert cli.main(["zz-test"]) == 7
        with pytest.raises(ValueError, match="'zz-test'"):
            cli.subcommand("zz-test", "again")(run)
    finally:
        del cli.SUBCOMMANDS["zz-test"]


def test_progress_bar_text() -> None:
    out = io.StringIO()
    with cli.Progress("train", total=4, stream=out, width=8) as bar:
        bar.advance("a", n=2)
    assert "[####....] 2/4" in out.getvalue()
