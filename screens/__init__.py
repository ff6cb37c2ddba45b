"""Textual screens and widgets of the keyshift console (one screen per module)."""

__all__: list[str] = []
