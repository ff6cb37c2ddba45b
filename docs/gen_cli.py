"""Generate the command and option reference of docs/cli.md from the click tree itself.

The reference sits between two marker lines in docs/cli.md; everything else in that file is written
by hand (the ``--json`` documents, exit codes, contracts). Walking ``keyshift.console.cli.cli`` rather
than copying ``--help`` by hand is what keeps the page from drifting: tests/unit/test_docs_cli.py
regenerates the block and fails when the file's copy differs.

    .venv/bin/python docs/gen_cli.py          # rewrite the block in docs/cli.md
    .venv/bin/python docs/gen_cli.py --check  # exit 1 when docs/cli.md is stale
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

BEGIN = "<!-- BEGIN GENERATED: docs/gen_cli.py; do not edit by hand -->"
END = "<!-- END GENERATED -->"
CLI_MD = Path(__file__).with_name("cli.md")


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree, depth first, groups before their subcommands, names sorted."""
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], path + (name,))


def _cell(text: str) -> str:
    # One table cell: no newline, no unescaped pipe (click help may carry either).
    return " ".join(text.split()).replace("|", "\\|")


def _param_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        # A plain flag is a boolean; several flags sharing one destination each set a value.
        return f"flag (sets `{param.flag_value}`)" if isinstance(param.flag_value, str) else "flag"
    if isinstance(param.type, click.Choice):
        return " \\| ".join(f"`{c}`" for c in param.type.choices)
    metavar = getattr(param, "metavar", None)
    if metavar:
        return f"`{_cell(metavar)}`"
    return f"`{param.type.name.upper()}`"


def _default(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return ""
    # click 8.2+ marks "no default given" with a sentinel object rather than None.
    if param.default is None or param.default == () or callable(param.default) or \
            type(param.default).__name__ == "Sentinel":
        return ""
    return f"`{param.default}`"


def _option_row(param: click.Option) -> str:
    names = ", ".join(f"`{n}`" for n in param.opts + param.secondary_opts)
    notes = []
    if param.required:
        notes.append("required")
    if param.multiple:
        notes.append("repeatable")
    if param.envvar:
        notes.append(f"env `{param.envvar}`")
    help_text = _cell(param.help or "")
    extra = f" ({', '.join(notes)})" if notes else ""
    return f"| {names} | {_param_type(param)} | {_default(param)} | {help_text}{extra} |"


def usage(path: tuple[str, ...], command: click.Command) -> str:
    parts = ["keyshift", *path]
    if isinstance(command, click.Group):
        parts.append("COMMAND")
    for param in command.params:
        if isinstance(param, click.Argument):
            parts.append(param.human_readable_name)
    if any(isinstance(p, click.Option) for p in command.params):
        parts.append("[OPTIONS]")
    return " ".join(parts)


def render(root: click.Command) -> str:
    """The generated Markdown block, markers included."""
    lines = [BEGIN, ""]
    for path, command in walk(root):
        title = " ".join(("keyshift", *path))
        lines.append(f"### `{title}`")
        lines.append("")
        lines.append("```")
        lines.append(usage(path, command))
        lines.append("```")
        lines.append("")
        if command.help:
            lines.append(" ".join(command.help.split("\b")[0].split()))
            lines.append("")
        if isinstance(command, click.Group) and command.commands:
            subs = ", ".join(f"[`{n}`](#{anchor(path + (n,))})" for n in sorted(command.commands))
            lines.append(f"Subcommands: {subs}.")
            lines.append("")
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        for arg in arguments:
            kind = _param_type(arg)
            lines.append(f"- argument `{arg.human_readable_name}`: {kind}")
        if arguments:
            lines.append("")
        options = [p for p in command.params if isinstance(p, click.Option)]
        if options:
            lines.append("| option | value | default | meaning |")
            lines.append("|---|---|---|---|")
            lines.extend(_option_row(p) for p in options)
            lines.append("")
    lines.append(END)
    return "\n".join(lines)


def anchor(path: tuple[str, ...]) -> str:
    """GitHub's anchor for the heading ``### `keyshift a b` ``: lowercase, spaces to dashes,
    punctuation other than dashes and underscores dropped."""
    text = " ".join(("keyshift", *path)).lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def splice(document: str, block: str) -> str:
    """``document`` with the text between the markers replaced by ``block``."""
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + block + document[end:]


def main(argv: list[str]) -> int:
    from keyshift.console.cli import cli

    current = CLI_MD.read_text(encoding="utf-8")
    updated = splice(current, render(cli))
    if "--check" in argv:
        if updated != current:
            print(f"{CLI_MD} is stale: run .venv/bin/python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    CLI_MD.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
