"""Identifiers with their look-alike badges: what makes ``Café`` (NFC) and ``Cafe`` + U+0301 differ.

Screens only render here; the detection is :func:`keyshift.core.text.lookalike.marks`. Every place
where an operator chooses between identifiers (the queue, the decision dialogs, the browser) shows
an identifier with :func:`identifier_text`, so two spellings that a terminal draws alike never
look alike on screen: one carries a badge (``NFD``, ``Cyrl``, ``␣␣``, ``NBSP``) the other lacks.
"""

from __future__ import annotations

from rich.text import Text

from keyshift.core.text.lookalike import marks

from .widgets import visible_text

__all__ = ["BADGE_STYLE", "DRAWN_INLINE", "badge_text", "identifier_text"]

#: Marks that :func:`~.widgets.visible_text` already draws in the text itself (``Acme⟨ZWSP⟩``,
#: ``⟨NBSP⟩``, ``⟨SP⟩Acme``): a badge for them would only repeat the marker in a narrow column.
DRAWN_INLINE = frozenset({"invisible", "nbsp", "space", "edge-space"})

#: One style for every badge, so that a reviewer learns it once (reverse video survives no-colour).
BADGE_STYLE = "bold black on yellow"


def badge_text(raw: str | None, *, skip: frozenset[str] = frozenset()) -> Text:
    """The badges of ``raw`` (``" NFD Cyrl "`` styled), or empty text when it has none; ``skip``:
    mark codes to leave out."""
    found = [m for m in marks(raw) if m.code not in skip] if raw else []
    if not found:
        return Text("")
    return Text(f" {' '.join(m.label for m in found)} ", style=BADGE_STYLE, no_wrap=True)


def identifier_text(raw: str | None, *, none: str = "—", edge_spaces: bool = True) -> Text:
    """Its badges, then ``raw`` as :func:`~.widgets.visible_text` shows it.

    Marks the text already draws (invisible characters, odd spaces: :data:`DRAWN_INLINE`) get no
    badge. The badges come first so that a narrow column's ellipsis cuts the identifier's tail, never
    the one thing that tells two spellings apart.
    """
    shown = visible_text(raw, none=none, edge_spaces=edge_spaces)
    badge = badge_text(raw, skip=DRAWN_INLINE if edge_spaces else DRAWN_INLINE - {"edge-space"})
    if not badge.plain:
        return shown
    text = Text(no_wrap=shown.no_wrap, overflow=shown.overflow)
    text.append_text(badge)
    text.append(" ")
    text.append_text(shown)
    return text
