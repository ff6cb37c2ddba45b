"""Reader throughput against a bare ``gzip`` + ``orjson.loads`` loop (opt-in benchmark).

    KEYSHIFT_BENCH=1 pytest tests/unit/test_dumps_perf.py -n0 -s

Generates a 200,000-line gzipped export data file per item shape, then times, best of several
interleaved rounds (CPU time, so other processes on the machine matter less):

- bare: ``for line in gzip.open(path): orjson.loads(line)``
- keyshift: ``for line in open_dump(dir, "export"): pass`` (split, parse, validate, DumpLine)

Target: keyshift at >= 50% of the bare loop's lines/s.
"""

from __future__ import annotations

import base64
import gzip
import os
import random
import time
from pathlib import Path

import orjson
import pytest

from keyshift.core.dumps import open_dump

pytestmark = pytest.mark.skipif(not os.environ.get("KEYSHIFT_BENCH"),
                                reason="benchmark: set KEYSHIFT_BENCH=1 to run")

LINES = int(os.environ.get("KEYSHIFT_BENCH_LINES", "200000"))
ROUNDS = 5


def rich_item(i: int, rnd: random.Random) -> dict:
    """12 attributes: strings, numbers, a set, a map, a list, sometimes binary and null."""
    item = {
        "Id": {"N": str(100000 + i)}, "Name": {"S": f"Customer name {i} \u200b"},
        "Sku": {"S": f"SKU-{i:08d}"}, "Price": {"N": f"{rnd.random() * 100:.2f}"},
        "Active": {"BOOL": bool(i % 2)}, "Tags": {"SS": ["a", "b", f"t{i % 7}"]},
        "Created": {"S": "2024-01-01T00:00:00Z"}, "Qty": {"N": str(i % 50)},
        "Dims": {"M": {"w": {"N": "8.5"}, "h": {"N": "11"}}},
        "Notes": {"L": [{"S": "x"}, {"N": "1"}]},
    }
    if i % 10 == 0:
        item["Blob"] = {"B": base64.b64encode(bytes([i % 256]) * 12).decode()}
    if i % 13 == 0:
        item["Gone"] = {"NULL": True}
    return item


def flat_item(i: int, rnd: random.Random) -> dict:
    """8 top-level strings and numbers: the common shape of a key-value table."""
    return {"pk": {"S": f"CUSTOMER#{i:09d}"}, "sk": {"S": "PROFILE"},
            "name": {"S": f"Customer name {i}"}, "email": {"S": f"c{i}@example.com"},
            "age": {"N": str(18 + i % 60)}, "balance": {"N": f"{rnd.random() * 1e4:.2f}"},
            "city": {"S": "Springfield"}, "version": {"N": str(i % 9)}}


def make(tmp: Path, shape) -> Path:
    root = tmp / shape.__name__
    data = root / "AWSDynamoDB" / "01718098200000-bench000" / "data"
    data.mkdir(parents=True)
    rnd = random.Random(1)
    with gzip.open(data / "part-0000.json.gz", "wb", compresslevel=6) as fh:
        for i in range(LINES):
            fh.write(orjson.dumps({"Item": shape(i, rnd)}) + b"\n")
    return root


def bare(path: Path) -> float:
    t = time.process_time()
    with gzip.open(path) as fh:
        for line in fh:
            orjson.loads(line)
    return time.process_time() - t


def ours(root: Path) -> float:
    t = time.process_time()
    n = 0
    for line in open_dump(str(root), "export"):
        n += 1
    assert n == LINES
    return time.process_time() - t


@pytest.mark.parametrize("shape", [rich_item, flat_item])
def test_throughput(tmp_path, shape):
    root = make(tmp_path, shape)
    path = next(root.rglob("*.json.gz"))
    b, o = [], []
    for _ in range(ROUNDS):
        b.append(bare(path))
        o.append(ours(root))
    ratio = min(b) / min(o)
    print(f"\n{shape.__name__}: {LINES} lines, {path.stat().st_size / 1e6:.1f} MB gz | "
          f"bare gzip+orjson {LINES / min(b) / 1e3:.0f}k lines/s | "
          f"open_dump {LINES / min(o) / 1e3:.0f}k lines/s | ratio {ratio:.2f}")
    assert ratio >= 0.5
