"""Time ``keyshift.core.text.scripts.suspicious()`` per call on three mixes of identifiers.

    python tools/bench_suspicious.py            # best of 5 rounds per mix
    python tools/bench_suspicious.py --rounds 9

Mixes (all canonical forms, since the planner calls ``suspicious`` on what ``Normalizer.explain``
produced):

* ``demo``: the distinct non-ASCII canonical forms of the demo data (``console/demo_data.py``,
  5,000 records): what a real plan mostly sees, nearly all of it below U+0180 (the fast path);
* ``scripts``: identifiers past the fast path: Cyrillic, Greek, CJK, Japanese, Korean, Arabic,
  Hebrew, look-alikes, Latin with IPA letters, mixed-script names;
* ``all``: both together.

The import of the module and the first call of a process (which loads the data files) are timed
together, in a fresh interpreter that has already imported ``unicodedata2``, as ``first call``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SCRIPTS_MIX = (
    "раураl", "Москва", "ООО Ромашка", "Ѕtarlight Books", "Acmе Corp", "аррle", "ΑΒΕ Hellas",
    "Ελλάδα Τρόφιμα", "東京タワー", "ACME株式会社", "서울 Seoul", "台北 Taipei ㄅ", "Sony ソニー",
    "北京有限公司", "شركة الأمل", "חברה בע\"מ", "pɑypal", "ᏟᎪᎡ Motors", "ꓚꓔ Ltd", "օnline",
    "Αcme 7", "Acme Москва", "ωmega", "жωb", "Şişli Ticaret Ağır", "Nguyễn Văn An", "İstanbul Ǧ",
    "Łódź Ƶ", "Ꭺcme", "Café Ꮢouge", "ǀkhomani", "Kraków Ⅻ", "서울특별시 강남구", "Привет Мир 2029",
)


def _mixes() -> dict[str, list[str]]:
    from keyshift.console.demo_data import build_demo_data
    from keyshift.core.text.normalize import Normalizer

    norm = Normalizer()
    demo = sorted({norm.canonical(item["customer"]["S"]) for item in build_demo_data(5_000).items})
    demo = [t for t in demo if not t.isascii()]
    scripts = [norm.canonical(t) for t in SCRIPTS_MIX]
    return {"demo": demo, "scripts": scripts, "all": demo + scripts}


def _per_call(texts: list[str], rounds: int) -> float:
    from keyshift.core.text.scripts import suspicious

    for text in texts:  # warm: the data is loaded once per process, caches fill
        suspicious(text)
    reps = max(1, 200_000 // len(texts))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            for text in texts:
                suspicious(text)
        best = min(best, (time.perf_counter() - t0) / (reps * len(texts)))
    return best


def _first_call() -> float:
    code = (
        "import time, unicodedata2, keyshift.core.text.escape; t0 = time.perf_counter()\n"
        "from keyshift.core.text.scripts import suspicious; suspicious('раураl')\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    """Print per-call times (best of ``--rounds``) for each mix and the first call's time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, texts in _mixes().items():
        fast = sum(1 for t in texts if max(t) < "\u0180")
        us = _per_call(texts, args.rounds) * 1e6
        print(f"{name:8} {len(texts):5} identifiers ({fast} on the fast path): {us:6.2f} µs/call")
    print(f"import + first call (loads the data): {_first_call() * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
