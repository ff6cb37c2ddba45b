"""Time ``keyshift.core.text.scripts.suspicious()`` per call on three mixes of identifiers.

    python bench/suspicious_bench.py                      # best of 9 rounds per mix
    git show 9ea14a3:core/text/scripts.py > /tmp/old_scripts.py
    python bench/suspicious_bench.py --baseline /tmp/old_scripts.py   # both, side by side

Mixes (all canonical forms, since the planner calls ``suspicious`` on what ``Normalizer.explain``
produced):

* ``demo``: the distinct non-ASCII canonical forms of the demo data (``console/demo_data.py``,
  5,000 records): what a real plan mostly sees, nearly all of it below U+0180 (the fast path);
* ``scripts``: identifiers past the fast path: Cyrillic, Greek, CJK, Japanese, Korean, Arabic,
  Hebrew, look-alikes, Latin with IPA letters, mixed-script names;
* ``all``: both together; ``all<200``: without the demo's 1,300-letter identifier.

With ``--baseline``, another ``scripts.py`` (e.g. an older commit's) is loaded as a module of
``keyshift.core.text`` and timed in the same process, rounds interleaved, so that both see the
same load on a shared machine. The import and first call of each (which loads the data) are
timed in fresh interpreters, as ``first call``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from typing import Callable

SCRIPTS_MIX = (
    "раураl", "Москва", "ООО Ромашка", "Ѕtarlight Books", "Acmе Corp", "аррle", "ΑΒΕ Hellas",
    "Ελλάδα Τρόφιμα", "東京タワー", "ACME株式会社", "서울 Seoul", "台北 Taipei ㄅ", "Sony ソニー",
    "北京有限公司", "شركة الأمل", "חברה בע\"מ", "pɑypal", "ᏟᎪᎡ Motors", "ꓚꓔ Ltd", "օnline",
    "Αcme 7", "Acme Москва", "ωmega", "жωb", "Şişli Ticaret Ağır", "Nguyễn Văn An", "İstanbul Ǧ",
    "Łódź Ƶ", "Ꭺcme", "Café Ꮢouge", "ǀkhomani", "Kraków Ⅻ", "서울특별시 강남구", "Привет Мир 2029",
)

Suspicious = Callable[[str], tuple[str, ...]]


def _mixes() -> dict[str, list[str]]:
    from keyshift.console.demo_data import build_demo_data
    from keyshift.core.text.normalize import Normalizer

    norm = Normalizer()
    demo = sorted({norm.canonical(item["customer"]["S"]) for item in build_demo_data(5_000).items})
    demo = [t for t in demo if not t.isascii()]
    scripts = [norm.canonical(t) for t in SCRIPTS_MIX]
    everything = demo + scripts
    return {"demo": demo, "scripts": scripts, "all": everything,
            "all<200": [t for t in everything if len(t) < 200]}


def _load(path: str | None) -> Suspicious:
    if path is None:
        from keyshift.core.text.scripts import suspicious

        return suspicious
    import keyshift.core.text  # the baseline's relative imports resolve in this package

    spec = importlib.util.spec_from_file_location("keyshift.core.text._baseline_scripts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.suspicious


def _round(fn: Suspicious, texts: list[str]) -> float:
    reps = max(1, 20_000 // len(texts))
    t0 = time.perf_counter()
    for _ in range(reps):
        for text in texts:
            fn(text)
    return (time.perf_counter() - t0) / (reps * len(texts))


def _first_call(path: str | None) -> float:
    load = (
        "from keyshift.core.text.scripts import suspicious\n" if path is None else
        "import importlib.util, keyshift.core.text\n"
        f"spec = importlib.util.spec_from_file_location('keyshift.core.text._b', {path!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "suspicious = m.suspicious\n"
    )
    code = (
        # what the planner has imported anyway before its first explain()
        "import time, typing, dataclasses, string, bisect, unicodedata2\n"
        "import keyshift.core.text.normalize\n"
        "t0 = time.perf_counter()\n" + load + "suspicious('раураl')\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    """Print per-call times (best of ``--rounds``) for each mix and the first call's time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", metavar="SCRIPTS_PY", help="another scripts.py to compare")
    args = parser.parse_args()
    runs = {"now": _load(None)}
    if args.baseline:
        runs = {"baseline": _load(args.baseline), **runs}
    mixes = _mixes()
    best: dict[tuple[str, str], float] = {}
    for fn in runs.values():
        for text in mixes["all"]:  # warm: data loaded, caches filled
            fn(text)
    for _ in range(args.rounds):
        for name, fn in runs.items():
            for mix, texts in mixes.items():
                best[name, mix] = min(best.get((name, mix), float("inf")), _round(fn, texts))
    for mix, texts in mixes.items():
        fast = sum(1 for t in texts if max(t) < "\u0180")
        times = "  ".join(f"{name} {best[name, mix] * 1e6:6.2f} µs" for name in runs)
        print(f"{mix:8} {len(texts):4} identifiers ({fast:3} on the fast path): {times}")
    paths = {"baseline": args.baseline, "now": None}
    firsts = "  ".join(f"{name} {_first_call(paths[name]) * 1e3:5.1f} ms" for name in runs)
    print(f"first call (import + load the data): {firsts}")


if __name__ == "__main__":
    main()
