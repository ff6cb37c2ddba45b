"""keyshift.core must stay importable without Textual (and without the UI packages)."""

import subprocess
import sys


def test_core_never_imports_textual():
    code = (
        "import sys, pkgutil, importlib, keyshift.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'keyshift.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual'"
        " or m.startswith(('keyshift.screens', 'keyshift.console'))]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
