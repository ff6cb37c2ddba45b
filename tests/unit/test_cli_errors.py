"""A keyshift bug still ends in one line: the traceback goes to a crash file the line names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keyshift.console import cli


def test_an_unexpected_exception_is_one_line_and_a_crash_file(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".keyshift").mkdir()

    def broken(*args, **kwargs):
        raise RuntimeError("something keyshift did not expect")

    monkeypatch.setattr("keyshift.core.store.workspace.Workspace.audit_log", broken)
    (tmp_path / ".keyshift" / "keyshift.db").touch()
    monkeypatch.setattr(sys, "argv", ["keyshift", "audit"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error: RuntimeError: something keyshift did not expect" in err
    crash = next((tmp_path / ".keyshift").glob("keyshift-crash-*.txt"))
    assert "Traceback" in crash.read_text() and str(crash) in " ".join(err.split())
