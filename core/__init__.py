"""Domain logic of keyshift. Never imports Textual, ``keyshift.screens`` or ``keyshift.console``.

One module per concept: ``spec`` (the migration spec), ``workspace`` (the SQLite store),
``aws`` (every boto3 client), ``dumps`` (table dump readers), ``normalize`` (named key rules),
``reference`` (upstream name -> id data), ``plan`` (classification of every record).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
