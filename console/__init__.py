"""The keyshift App, its CLI entry point and the embedded demo."""

__all__: list[str] = []
