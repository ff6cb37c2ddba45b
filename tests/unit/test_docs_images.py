"""The runbook's screen images exist, and every image docs/gen_screens.py made is used.

A renamed screenshot or a link typed wrong would otherwise show as a broken image only on GitHub;
an image no page links is a stale one nobody looks at.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _links(page: Path) -> list[str]:
    return IMAGE_LINK.findall(page.read_text(encoding="utf-8"))


def test_the_runbook_has_screen_images() -> None:
    links = _links(DOCS / "runbook.md")
    assert len(links) >= 10, links
    assert all(link.startswith("images/") and link.endswith(".svg") for link in links), links


def test_every_linked_image_exists() -> None:
    missing = [f"{page.name}: {link}" for page in sorted(DOCS.glob("*.md")) for link in _links(page)
               if not link.startswith(("http://", "https://")) and not (page.parent / link).is_file()]
    assert not missing


def test_every_image_is_linked_and_is_a_console_svg() -> None:
    linked = {(DOCS / link).resolve() for page in DOCS.glob("*.md") for link in _links(page)}
    images = sorted((DOCS / "images").glob("*.svg"))
    assert images
    assert [p.name for p in images if p.resolve() not in linked] == []
    # Textual's export: an SVG whose title is the app's (a hand-drawn or empty file would not be).
    not_console = [p.name for p in images
                   if not p.read_text(encoding="utf-8").lstrip().startswith("<svg")
                   or "keyshift" not in p.read_text(encoding="utf-8")]
    assert not_console == []
