"""Layering: core never needs the UI, and the service-side kernel needs nothing but the stdlib and boto3.

The kernel (``keyshift.core.kernel``: the keymap document reader, the transform and its inverse)
runs inside other people's services and Lambdas, installed with ``pip install --no-deps keyshift``:
the second test imports and *runs* it in a fresh interpreter where the other dependencies cannot be
imported at all, as on such a host. The import-linter contracts in ``pyproject.toml`` check the
same layers statically, every import of every module.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


#: What a service that installed keyshift with --no-deps does not have (sqlite3: Lambda runtimes
#: may lack it, and the kernel has no business with the workspace).
NOT_ON_A_SERVICE = ("textual", "rich", "click", "orjson", "unicodedata2", "sqlite3", "moto")

_KERNEL_RUN = f"""
import importlib.abc, json, pkgutil, importlib, sys
BLOCKED = {NOT_ON_A_SERVICE!r}

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed on this service")
        return None

sys.meta_path.insert(0, NotInstalled())
import keyshift.core.kernel as kernel
for m in pkgutil.walk_packages(kernel.__path__, 'keyshift.core.kernel.'):
    importlib.import_module(m.name)
from keyshift.core.kernel.keymap import FORMAT, keymap_from_document
from keyshift.core.kernel.transform import KeyNames, Put, inverse, transform
doc = {{"format": FORMAT, "version": "v1", "entries": {{"Acme\\u200b": {{"new_id": "C-1", "source": "rule"}}}},
       "unresolved": {{}}, "winners": []}}
keymap = keymap_from_document(json.loads(json.dumps(doc)))
names = KeyNames("customer", "order_id", "customer_id", "legacy")
out = transform({{"customer": {{"S": "Acme\\u200b"}}, "order_id": {{"S": "o1"}}, "x": {{"B": "AQID"}}}}, keymap, names)
assert type(out) is Put and out.item["customer_id"] == {{"S": "C-1"}}, out
assert inverse(out.item, names, keymap)["customer"] == {{"S": "Acme\\u200b"}}
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set(BLOCKED))
mine = sorted(m for m in sys.modules if m.startswith('keyshift.') and not m.startswith('keyshift.core.kernel'))
print(json.dumps({{"loaded": loaded, "keyshift": mine}}))
"""


def test_kernel_runs_with_the_standard_library_and_boto3_only():
    result = subprocess.run([sys.executable, "-c", _KERNEL_RUN], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert doc["loaded"] == []
    # Only the namespace root and the kernel itself: no other keyshift module rides along.
    assert doc["keyshift"] == ["keyshift.core"]


_HANDLER_RUN = _KERNEL_RUN.split("import keyshift.core.kernel as kernel")[0] + """
import keyshift.core.lambda_handler as entry
from keyshift.core.kernel import batch_writer, echo_dynamodb, lambda_events, merged, reverse_records, lambda_handler
assert entry.handler is lambda_handler.handler
loaded = sorted({m.split('.')[0] for m in sys.modules} & set(BLOCKED))
mine = sorted(m for m in sys.modules if m.startswith('keyshift.') and not m.startswith('keyshift.core.kernel'))
print(json.dumps({"loaded": loaded, "keyshift": mine}))
"""


def test_the_lambda_entry_point_needs_only_the_kernel():
    """What the deployed function imports (``keyshift.core.lambda_handler.handler``): the re-export
    and the kernel's handler modules, nothing else (docs/deploy.md: ``pip install --no-deps``)."""
    result = subprocess.run([sys.executable, "-c", _HANDLER_RUN], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert doc["loaded"] == []
    assert doc["keyshift"] == ["keyshift.core", "keyshift.core.lambda_handler"]


def test_layer_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:  # pragma: no cover - the test extra installs it
        pytest.fail("lint-imports (import-linter) is not installed: pip install '.[test]'")
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


_ROUTER_RUN = _KERNEL_RUN.split("import keyshift.core.kernel as kernel")[0] + """
from keyshift.core.router import MigrationRouter, RouterUnavailable
from keyshift.core.kernel import router as kernel_router
assert MigrationRouter is kernel_router.MigrationRouter
class Flag:  # a stub client: the router's own code paths run, nothing is sent
    def get_item(self, **kw):
        return {"Item": {"state": {"S": "new"}, "version": {"N": "2"}}}
    def put_item(self, **kw):
        pass
router = MigrationRouter("keyshift-control", "f", "old", "new", client=Flag(),
                         keymap={"format": "keyshift-keymap/1", "version": "v1", "unresolved": {}, "winners": [],
                                 "entries": {"A": {"new_id": "C-1", "source": "rule"}}})
assert router.table() == "new" and router.key("A") == "C-1"
loaded = sorted({m.split('.')[0] for m in sys.modules} & set(BLOCKED))
mine = sorted(m for m in sys.modules if m.startswith('keyshift.') and not m.startswith('keyshift.core.kernel'))
print(json.dumps({"loaded": loaded, "keyshift": mine}))
"""


def test_the_router_for_services_needs_only_the_kernel():
    """What a service imports (``from keyshift.core.router import MigrationRouter``, docs/services.md):
    the re-export and the kernel, nothing else, and it runs there."""
    result = subprocess.run([sys.executable, "-c", _ROUTER_RUN], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert doc["loaded"] == []
    assert doc["keyshift"] == ["keyshift.core", "keyshift.core.router"]
