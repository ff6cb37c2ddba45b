"""docs/cli.md keeps up with the click tree: every command and option is named there, and the
generated reference block is what docs/gen_cli.py makes of the CLI today.

The generator is imported from its file (docs/ is not a package): the test and the script share one
rendering, so "stale" means exactly "running the script would change the page".
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest

from keyshift.console.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page() -> str:
    return (DOCS / "cli.md").read_text(encoding="utf-8")


def test_generated_block_is_current(gen_cli, page: str) -> None:
    assert gen_cli.splice(page, gen_cli.render(cli)) == page, \
        "docs/cli.md is stale: run .venv/bin/python docs/gen_cli.py"


def _hand_written(gen_cli, page: str) -> str:
    start, end = page.index(gen_cli.BEGIN), page.index(gen_cli.END) + len(gen_cli.END)
    return page[:start] + page[end:]


def _commands(gen_cli) -> list[tuple[tuple[str, ...], click.Command]]:
    return [(path, command) for path, command in gen_cli.walk(cli) if path]


def test_every_command_and_option_is_in_the_reference(gen_cli, page: str) -> None:
    block = page[page.index(gen_cli.BEGIN):page.index(gen_cli.END)]
    missing = []
    for path, command in gen_cli.walk(cli):
        heading = f"### `{' '.join(('keyshift', *path))}`"
        if heading not in block:
            missing.append(heading)
            continue
        section = block.split(heading, 1)[1].split("\n### ", 1)[0]
        missing += [f"{' '.join(path)} {opt}" for p in command.params if isinstance(p, click.Option)
                    for opt in p.opts if f"`{opt}`" not in section]
    assert not missing


def test_every_command_has_a_hand_written_section(gen_cli, page: str) -> None:
    """Outside the generated block each command is described by hand (its --json document,
    what it is for): a new command without prose fails here, not only in review."""
    prose = _hand_written(gen_cli, page)
    missing = [" ".join(path) for path, command in _commands(gen_cli)
               if not isinstance(command, click.Group) and f"`keyshift {' '.join(path)}" not in prose]
    assert not missing, f"docs/cli.md describes no: {missing}"


def test_every_json_command_documents_its_json(gen_cli, page: str) -> None:
    """A command with ``--json`` gets a "JSON: `keyshift …`" heading in the hand-written part."""
    prose = _hand_written(gen_cli, page)
    documented = set(re.findall(r"^#### JSON: `keyshift ([a-z -]+?)(?: --[^`]*)?`", prose, flags=re.M))
    with_json = {" ".join(path) for path, command in _commands(gen_cli)
                 if any("--json" in p.opts for p in command.params if isinstance(p, click.Option))}
    assert with_json - documented == set(), f"no JSON section for: {sorted(with_json - documented)}"


def test_the_anchors_of_the_reference_resolve(gen_cli, page: str) -> None:
    """Every ``(#keyshift-…)`` link on the page points at a heading of the page."""
    headings = {gen_cli.anchor(path) for path, _ in gen_cli.walk(cli)}
    headings |= {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-")
                 for h in re.findall(r"^#+ (.+)$", page, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", page))
    assert links - headings == set()
