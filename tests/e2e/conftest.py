"""Fixtures for the end-to-end tests: the real ``keyshift`` command against the local moto server.

Every test gets a freshly reset server (``aws_env``), a dump in its S3 and a spec on disk, and
runs ``python -m keyshift.console.cli`` as a subprocess, exactly as an operator or a script would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from keyshift.console import demo_data as dd
from keyshift.console.demo import SPEC_TEMPLATE

#: The curated traps alone: every count of their plan is known by hand (see test_e2e_plan.py).
_CURATED_RECORDS = sum(n for _, n, _, _ in dd.CURATED)

DUMPS = "e2e-dumps"
UPSTREAM = "e2e-upstream"


@dataclass
class Result:
    """A finished ``keyshift`` run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (fails the test with both streams when it is not)."""
        assert self.returncode == 0, f"keyshift {' '.join(self.args)} exited {self.returncode}:\n{self.stderr}"
        return json.loads(self.stdout)

    @property
    def message(self) -> str:
        """stderr with whitespace runs folded (terminal wrapping must not break assertions)."""
        return " ".join(self.stderr.split())


@dataclass
class World:
    """A spec, a workspace path and dumps in S3 for one test."""

    tmp: Path
    env: dict[str, str]
    s3: Any
    spec_path: Path
    workspace: Path
    export_uri: str = ""
    export_base: str = ""
    export_objects: dict[str, bytes] = field(default_factory=dict)
    export_lines: int = 0

    def run(self, *args: str, timeout: float = 60, workspace: Path | None = None,
            spec: Path | None = None, global_args: tuple[str, ...] = ()) -> Result:
        """``keyshift --spec … --workspace … [global_args] args…`` in a subprocess."""
        argv = ["--spec", str(spec or self.spec_path), "--workspace", str(workspace or self.workspace),
                *global_args, *args]
        return run_keyshift(argv, self.env, self.tmp, timeout)


def _process_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without AWS or keyshift settings, plus ``env``; wide, plain UTF-8."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYSHIFT_"))}
    return {**base, **env, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}


def run_keyshift(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> Result:
    """Run the real command line; output is decoded as UTF-8."""
    proc = subprocess.run(
        [sys.executable, "-m", "keyshift.console.cli", *argv],
        cwd=cwd, env=_process_env(env), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return Result(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"))


@pytest.fixture
def world(aws_env: dict[str, str], boto_clients: Any, tmp_path: Path) -> World:
    """Curated demo data as a native export in S3 (with manifests), reference data, a spec."""
    data = dd.build_demo_data(_CURATED_RECORDS)
    s3 = boto_clients.s3
    dd.put_objects(s3, UPSTREAM, {"customers.jsonl": data.reference_jsonl()})
    lines = [dd.item_line(i) for i in data.items] + data.extra_lines
    base, objects = dd.export_objects(lines, bucket=DUMPS, prefix="exports", table="orders")
    dd.put_objects(s3, DUMPS, objects)
    spec = tmp_path / "keyshift.toml"
    spec.write_text(SPEC_TEMPLATE.format(upstream=UPSTREAM), encoding="utf-8")  # the demo's spec
    return World(tmp=tmp_path, env=aws_env, s3=s3, spec_path=spec, workspace=tmp_path / ".keyshift",
                 export_uri=f"s3://{DUMPS}/{base}/", export_base=base, export_objects=objects,
                 export_lines=len(lines))


@pytest.fixture
def curated() -> dd.DemoData:
    """The curated items, reference rows and bad lines (the same the ``world`` dump holds)."""
    return dd.build_demo_data(_CURATED_RECORDS)


def spawn_keyshift(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start the real command line in the background (for runs a test signals, kills or watches)."""
    return subprocess.Popen([sys.executable, "-m", "keyshift.console.cli", *argv], cwd=cwd, env=_process_env(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def spawn_cli() -> Callable[..., subprocess.Popen[bytes]]:
    """:func:`spawn_keyshift` itself."""
    return spawn_keyshift


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """:func:`run_keyshift` itself, for tests that bring their own environment (the demo)."""
    return run_keyshift
