"""Fixtures for the console tests (data and helpers live in ``ui_support``)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from ui_support import (Fixture, add_control, copy_fixture, finish_pinned, flag_with_one_flip, plan_fixture, plan_pinned,
                        write_spec)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(scope="session")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """One planned workspace shared by the tests that only read it."""
    return Fixture(plan_fixture(tmp_path_factory.mktemp("planned")))


@pytest.fixture
def fresh(tmp_path: Path) -> Fixture:
    """A directory with the spec and the dump but no plan yet (for the tests that plan)."""
    write_spec(tmp_path)
    return Fixture(tmp_path)


@pytest.fixture
def resolvable(planned: Fixture, tmp_path: Path) -> Fixture:
    """A private copy of the planned workspace, for the tests that record decisions."""
    return Fixture(copy_fixture(planned.path, tmp_path / "planned"))


@pytest.fixture(scope="session")
def pinned_planned(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """The fixture dump planned from the moto server's S3 with every clock pinned while it was
    written (its audit log carries pinned times and an S3 location, and its chain verifies)."""
    return Fixture(plan_pinned(tmp_path_factory.mktemp("pinned"), moto_server))


@pytest.fixture
def flagged(pinned_planned: Fixture, aws_env: dict[str, str], tmp_path: Path) -> Fixture:
    """A private copy of ``pinned_planned`` whose spec has a ``[control]`` section, its flag made
    in the (freshly reset) moto server and flipped once to shadow, at pinned times."""
    fixture = Fixture(copy_fixture(pinned_planned.path, tmp_path / "flagged"))
    add_control(fixture.path)
    flag_with_one_flip(fixture)
    return fixture


@pytest.fixture(scope="session")
def finished_pinned(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """A clean dump planned, restored and verified (one item missing), clocks pinned while written.

    Only the workspace is kept: the idle restore and verify screens read nothing from AWS (the
    server is reset before this and by the next test that uses it).
    """
    from keyshift.console.demo import reset_moto

    reset_moto(moto_server)
    return Fixture(finish_pinned(tmp_path_factory.mktemp("finished-pinned"), moto_server))
