"""Operators never see a traceback: every command fails with one line naming what and where, exit 2.

Regression (issue 8): ``keyshift --endpoint-url http://127.0.0.1:1 restore`` and ``stream-sync``
printed a botocore traceback and exited 1, after 8-21 s of silent retries.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

DEAD = "http://127.0.0.1:1"


@pytest.fixture
def planned(world):
    world.run("plan", "--dump", world.export_uri, "--json").json()
    return world


@pytest.mark.parametrize("args", [
    ("restore", "--create-table", "--allow-unresolved", "--json"),
    ("restore", "--allow-unresolved"),
    ("stream-sync", "--allow-unresolved", "--json"),
    ("verify", "--json"),
    ("keymap", "build", "--allow-unresolved", "--out", "s3://nowhere/keymap.json"),
    ("restore", "--via-import", "s3://nowhere/prefix", "--allow-unresolved"),
    ("plan", "--dump", "s3://e2e-dumps/exports/"),
])
def test_a_dead_endpoint_fails_fast_in_one_line(planned, args):
    started = time.monotonic()
    r = planned.run(*args, global_args=("--endpoint-url", DEAD), timeout=60)
    elapsed = time.monotonic() - started
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "127.0.0.1:1" in r.message
    assert elapsed < 15, f"{args[0]} took {elapsed:.1f} s to give up"


@pytest.mark.parametrize("args", [
    ("records",), ("resolve", "list"), ("audit",), ("keymap", "build"), ("verify",), ("restore",),
    ("stream-sync",), ("restore-control", "--pause"), ("resolve", "export", "out.json"),
    ("plan", "--dump", "nowhere.json"),
])
def test_commands_outside_a_migration_say_so_and_create_nothing(aws_env, tmp_path, run_cli, args):
    """Regression: records, resolve list, audit and keymap build exited 0 and created ./.keyshift/."""
    r = run_cli(list(args), aws_env, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    if args[0] == "plan":
        assert "spec file not found" in r.message and "keyshift.toml" in r.message
    else:
        assert "not a migration directory" in r.message
        assert str(tmp_path / ".keyshift") in r.message and str(tmp_path / "keyshift.toml") in r.message
    assert not (tmp_path / ".keyshift").exists()
