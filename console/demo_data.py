"""Realistic dirty data for the demo, the end-to-end tests and the benchmark.

Everything here is deterministic (a fixed seed): the same call gives the same items, the same
reference rows and byte-identical dump files, so tests can assert on counts and the console's demo
always tells the same story.

Two kinds of identifiers fill the table:

* :data:`CURATED` — one hand-picked raw identifier per trap of the brief (ZWSP, BOM, NBSP, blanks,
  tabs, fullwidth forms, NFD accents, soft hyphen, word joiner, bidi marks, control characters,
  Cyrillic look-alikes, a form that normalizes to nothing, one that NFKC blows past 2,048 bytes,
  orphans, a name the reference maps to two ids), with fixed order ids so two raw forms of one name
  collide on one (canonical, sort key);
* generated company names, most clean, some with random dirt (:func:`dirty`), a few unknown to the
  reference data.

The dump writers (:func:`export_objects`, :func:`datapipeline_objects`) produce the two S3 layouts
of the brief, manifests included, from wire-format lines. Nothing here talks to AWS except
:func:`put_objects`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import orjson

__all__ = [
    "SEED",
    "CURATED",
    "CURATED_CONFLICTS",
    "REFERENCE_AMBIGUOUS",
    "DemoData",
    "build_demo_data",
    "customer_names",
    "dirty",
    "order_item",
    "bad_dump_lines",
    "item_line",
    "to_datapipeline",
    "gzip_lines",
    "ExportFile",
    "export_id",
    "export_manifests",
    "export_objects",
    "datapipeline_objects",
    "put_objects",
]

#: The one seed: the demo tells the same story every time.
SEED = 20_240_611

# -- the hand-picked traps ------------------------------------------------------------------------
#: ``(raw identifier, orders, the clean name reference data knows or None, what it shows)``.
CURATED: tuple[tuple[str, int, str | None, str], ...] = (
    ("Acme Corp", 4, "Acme Corp", "clean form of a six-way ambiguous group"),
    ("Acme Corp\u200b", 2, "Acme Corp", "ZERO WIDTH SPACE pasted from a web page"),
    ("\ufeffAcme Corp", 2, "Acme Corp", "BYTE ORDER MARK from a CSV import"),
    ("Acme\u00a0Corp", 2, "Acme Corp", "NO-BREAK SPACE from a word processor"),
    ("Acme  Corp", 1, "Acme Corp", "doubled space"),
    ("Acme Corp ", 2, "Acme Corp", "trailing blank"),
    ("ＡＣＭＥ ＣＯＲＰ", 2, None, "fullwidth letters: NFKC gives 'ACME CORP', which differs from "
     "'Acme Corp' unless casefold is on, so it is an orphan"),
    ("Café Rouge", 2, "Café Rouge", "NFC form of an accented name"),
    ("Cafe\u0301 Rouge", 2, "Café Rouge", "NFD (decomposed) form: a different DynamoDB key"),
    ("Mu\u0308ller GmbH", 2, "Müller GmbH", "only ever written decomposed: fixed"),
    ("Umbrel\u00adla Supply", 2, "Umbrella Supply", "SOFT HYPHEN"),
    ("Stark\u2060 Industries", 2, "Stark Industries", "WORD JOINER"),
    ("Wayne Enterprises", 2, "Wayne Enterprises", "clean form"),
    ("\u200fWayne Enterprises\u200e", 2, "Wayne Enterprises", "RIGHT-TO-LEFT and LEFT-TO-RIGHT marks"),
    ("Initech\tLLC", 2, "Initech LLC", "TAB between words"),
    (" Globex Corporation", 2, "Globex Corporation", "leading blank"),
    ("Globex\u2003Corporation", 1, "Globex Corporation", "EM SPACE: two dirty forms, no clean one"),
    ("Cyberdyne Systems ２０２９", 2, "Cyberdyne Systems 2029", "fullwidth digits"),
    ("ｻｸﾗ Trading", 2, "サクラ Trading", "halfwidth katakana"),
    ("Hooli\u0008", 1, "Hooli", "a BACKSPACE control character from a terminal paste"),
    ("Cloud\ufe0f Nine", 1, "Cloud Nine", "VARIATION SELECTOR-16 left over from an emoji"),
    ("paypal", 1, "paypal", "clean, lower case"),
    ("раураl", 1, None, "Cyrillic look-alikes: suspicious, never auto-fixed (and an orphan)"),
    ("Ѕtarlight Books", 1, None, "CYRILLIC CAPITAL LETTER DZE for S: suspicious"),
    ("\u200b \u00a0", 1, None, "nothing left after normalization: invalid (empty key)"),
    ("\ufdfa" * 70 + " Imports", 1, None,
     "U+FDFA is 3 bytes but NFKC makes it 33: the canonical form is over 2,048 bytes (invalid)"),
    ("Dunder Mifflin", 1, None, "clean but unknown upstream: orphan"),
    ("Vandelay Industries", 1, None, "clean but unknown upstream: orphan"),
    ("Soylent Foods", 2, "Soylent Foods", "reference data offers two ids: ambiguous via reference"),
)

#: Order ids shared by two raw forms of one name: (canonical, order id) collides after the fix.
CURATED_CONFLICTS: tuple[tuple[str, str, str], ...] = (
    ("Acme Corp", "Acme Corp\u200b", "ORD-ACME-0001"),
    ("\ufeffAcme Corp", "Acme\u00a0Corp", "ORD-ACME-0002"),
    ("Café Rouge", "Cafe\u0301 Rouge", "ORD-CAFE-0001"),
)

#: A name the reference data maps to two ids.
REFERENCE_AMBIGUOUS = ("Soylent Foods", ("CUST-900001", "CUST-900002"))

# -- generated names ------------------------------------------------------------------------------
_FIRST = ("North", "Blue", "Silver", "Green", "Red", "Iron", "Bright", "Star", "Sun", "Oak", "Pine",
          "River", "Lake", "Stone", "Gold", "Swift", "Prime", "Apex", "Summit", "Harbor", "Maple",
          "Cedar", "Falcon", "Copper")
_SECOND = ("wind", "field", "bridge", "gate", "stone", "wood", "brook", "crest", "view", "dale",
           "ridge", "haven", "mark", "line")
_KIND = ("Traders", "Foods", "Logistics", "GmbH", "Ltd", "Inc.", "Supply", "& Sons", "Bakery", "Café",
         "Textiles", "Pharma", "Outfitters", "Brewing", "Hardware", "Studio")
_CITY = ("", "Berlin", "Zürich", "São Paulo", "Kraków", "Lyon", "Malmö", "Sevilla", "Osaka", "Austin",
         "Leeds", "Porto", "Gdańsk", "Tromsø", "Québec", "Köln", "Dublin", "Genève", "Brno", "Århus",
         "Nice", "Turin", "Graz", "Cork", "Bergen", "Lille", "Basel", "Bilbao", "Split", "Riga", "Oslo")


def customer_names(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct, clean, realistic company names (up to about 166,000), shuffled by ``rng``."""
    names = [
        f"{a}{b} {k}" + (f" {c}" if c else "")
        for c in _CITY for a in _FIRST for b in _SECOND for k in _KIND
    ]
    if count > len(names):
        raise ValueError(f"at most {len(names)} distinct generated names, not {count}")
    picked = rng.sample(range(len(names)), count)
    return [names[i] for i in picked]


def _insert(text: str, rng: random.Random, char: str) -> str:
    at = rng.randrange(1, len(text)) if len(text) > 1 else 0
    return text[:at] + char + text[at:]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


#: Ways real identifiers get dirty (each one a rule of the brief undoes).
_DIRT: tuple[Callable[[str, random.Random], str], ...] = (
    lambda s, r: s + "\u200b",                       # ZWSP at the end (copy from a web page)
    lambda s, r: _insert(s, r, "\u200b"),            # ZWSP inside
    lambda s, r: "\ufeff" + s,                       # BOM from a CSV
    lambda s, r: s.replace(" ", "\u00a0", 1),       # NBSP
    lambda s, r: s + " ",                            # trailing blank
    lambda s, r: " " + s,                            # leading blank
    lambda s, r: s.replace(" ", "  ", 1),            # doubled space
    lambda s, r: s.replace(" ", "\t", 1),            # tab
    lambda s, r: _fullwidth(s),                      # fullwidth forms
    lambda s, r: _insert(s, r, "\u00ad"),            # soft hyphen
    lambda s, r: _insert(s, r, "\u2060"),            # word joiner
    lambda s, r: "\u200e" + s,                       # LRM
    lambda s, r: unicodedata.normalize("NFD", s),   # decomposed accents
)


def dirty(name: str, rng: random.Random) -> str:
    """A dirty raw form of ``name`` (never equal to it): one of the copy-paste accidents above."""
    for _ in range(8):
        out = rng.choice(_DIRT)(name, rng)
        if out != name:
            return out
    return name + "\u200b"


# -- items ----------------------------------------------------------------------------------------
_STATUS = ("PLACED", "PAID", "SHIPPED", "DELIVERED", "RETURNED", "CANCELLED")
_CURRENCY = ("EUR", "USD", "GBP", "CHF", "SEK", "JPY")
_SKUS = tuple(f"SKU-{n:05d}" for n in range(1, 400))
_TAGS = ("priority", "wholesale", "gift", "b2b", "recurring", "promo", "fragile")
_EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def order_item(customer: str, order_id: str, rng: random.Random) -> dict[str, Any]:
    """One order in DynamoDB wire format; the identifier is also copied into ``billing_name``."""
    lines = []
    total = 0
    for _ in range(rng.randint(1, 3)):
        qty, cents = rng.randint(1, 12), rng.randint(199, 99_999)
        total += qty * cents
        lines.append({"M": {"sku": {"S": rng.choice(_SKUS)}, "qty": {"N": str(qty)},
                            "price": {"N": f"{cents / 100:.2f}"}}})
    created = _EPOCH + timedelta(seconds=rng.randrange(0, 700 * 86_400))
    item: dict[str, Any] = {
        "customer": {"S": customer},
        "order_id": {"S": order_id},
        "created_at": {"S": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "status": {"S": rng.choice(_STATUS)},
        "total": {"N": f"{total / 100:.2f}"},
        "currency": {"S": rng.choice(_CURRENCY)},
        "lines": {"L": lines},
        "billing_name": {"S": customer},
        "gift": {"BOOL": rng.random() < 0.1},
    }
    if rng.random() < 0.4:
        item["tags"] = {"SS": sorted(rng.sample(_TAGS, rng.randint(1, 3)))}
    if rng.random() < 0.1:
        item["note"] = {"NULL": True}
    # Binary values, top-level and nested in a set inside a map, on about one order in ten: dumps
    # carry them as base64 text and a writer must hand botocore bytes. Derived from the order id,
    # not from ``rng``, so adding them changed no other value of the demo data.
    digest = hashlib.sha256(order_id.encode()).digest()
    if digest[0] < 26:
        item["receipt"] = {"B": digest[2:14]}
        if digest[1] < 128:
            item["attachments"] = {"M": {"thumbs": {"BS": [digest[14:20], digest[20:26]]}}}
    return item


@dataclass
class DemoData:
    """The demo table's items, its upstream reference rows and the dump-only extra lines."""

    items: list[dict[str, Any]]
    reference: list[dict[str, Any]]
    extra_lines: list[bytes] = field(default_factory=list)

    def reference_jsonl(self) -> bytes:
        """The reference rows as JSON lines (what goes to ``customers.jsonl``)."""
        return b"".join(orjson.dumps(r) + b"\n" for r in self.reference)


def build_demo_data(n_records: int, seed: int = SEED) -> DemoData:
    """Exactly ``n_records`` items (at least the curated ones), reference rows and bad dump lines.

    About an eighth as many customers as items; of the generated customers about 12% also appear
    in a dirty form (ambiguous), 6% only in a dirty form (fixed) and 5% are unknown upstream.
    """
    rng = random.Random(seed)
    curated_orders = sum(n for _, n, _, _ in CURATED)
    if n_records < curated_orders:
        raise ValueError(f"the demo needs at least {curated_orders} records, not {n_records}")
    items: list[dict[str, Any]] = []
    taken: set[tuple[str, str]] = set()
    for a, b, order_id in CURATED_CONFLICTS:
        for raw in (a, b):
            items.append(order_item(raw, order_id, rng))
            taken.add((raw, order_id))
    counter = 0

    def next_order() -> str:
        nonlocal counter
        counter += 1
        return f"ORD-{counter:07d}"

    reference: list[dict[str, Any]] = []
    ref_ids: dict[str, str] = {}

    def ref(name: str) -> None:
        if name not in ref_ids:
            ref_ids[name] = f"CUST-{len(ref_ids) + 1:06d}"
            reference.append({"name": name, "id": ref_ids[name]})

    for raw, orders, known_as, _ in CURATED:
        already = sum(1 for r, _ in taken if r == raw)
        for _ in range(orders - already):
            items.append(order_item(raw, next_order(), rng))
        if known_as and known_as != REFERENCE_AMBIGUOUS[0]:
            ref(known_as)
    left = n_records - len(items)
    names = customer_names(max(8, left // 8), rng)
    raws: list[str] = []
    for name in names:
        roll = rng.random()
        if roll < 0.12:
            raws += [name, name, dirty(name, rng)]      # clean and dirty forms: ambiguous
        elif roll < 0.18:
            raws += [dirty(name, rng)]                  # only ever dirty: fixed
        else:
            raws += [name, name]
        if rng.random() >= 0.05:                        # 5% unknown upstream: orphans
            ref(name)
    # Zipf-ish: some customers order a lot, most a little.
    weights = [1.0 / (1 + (i % 50)) for i in range(len(raws))]
    for raw in rng.choices(raws, weights, k=left):
        items.append(order_item(raw, next_order(), rng))
    name, ids = REFERENCE_AMBIGUOUS
    reference += [{"name": name, "id": i} for i in ids]
    reference.append({"name": "", "id": "CUST-999999"})  # an unusable upstream row: reported, skipped
    rng.shuffle(items)
    return DemoData(items=items[:n_records], reference=reference, extra_lines=bad_dump_lines())


def bad_dump_lines() -> list[bytes]:
    """Lines a real dump may contain that the table cannot: the plan quarantines each, with its reason."""
    long_name = "Überlange Firmenbezeichnung " * 80  # ~2,300 UTF-8 bytes: no table can hold this key
    return [
        b'{"Item":{"customer":{"S":"Truncated Ltd"},"order_id":{"S":"ORD-BAD-0001"},"total":{"N":"1',
        orjson.dumps({"Item": {"customer": {"N": "42"}, "order_id": {"S": "ORD-BAD-0002"}}}),
        orjson.dumps({"Item": {"order_id": {"S": "ORD-BAD-0003"}, "total": {"N": "9.99"}}}),
        orjson.dumps({"Item": {"customer": {"S": long_name}, "order_id": {"S": "ORD-BAD-0004"}}}),
    ]


# -- dump writers ---------------------------------------------------------------------------------
def _b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def item_line(item: dict[str, Any], wrap: bool = True) -> bytes:
    """One dump line for a wire-format item (binary values, as boto3 returns them, in base64)."""
    return orjson.dumps({"Item": item} if wrap else item, default=_b64)


_DP_TYPES = {"S": "s", "N": "n", "B": "b", "SS": "sS", "NS": "nS", "BS": "bS", "M": "m", "L": "l",
             "BOOL": "bOOL", "NULL": "nULLValue"}


def to_datapipeline(item: dict[str, Any]) -> dict[str, Any]:
    """A wire-format item with the Data Pipeline (Java SDK v1) lower-camel type keys."""

    def conv(value: dict[str, Any]) -> dict[str, Any]:
        ((kind, payload),) = value.items()
        if kind == "M":
            payload = {k: conv(v) for k, v in payload.items()}
        elif kind == "L":
            payload = [conv(v) for v in payload]
        elif kind == "B" and not isinstance(payload, str):
            payload = _b64(payload)
        elif kind == "BS":
            payload = [p if isinstance(p, str) else _b64(p) for p in payload]
        return {_DP_TYPES[kind]: payload}

    return {name: conv(value) for name, value in item.items()}


def gzip_lines(lines: Iterable[bytes]) -> tuple[bytes, int]:
    """Gzipped newline-terminated lines and how many there were (an empty file for none)."""
    count = 0
    chunks = []
    for line in lines:
        chunks.append(line)
        chunks.append(b"\n")
        count += 1
    if not count:
        return b"", 0
    return gzip.compress(b"".join(chunks), compresslevel=6, mtime=0), count


@dataclass(frozen=True)
class ExportFile:
    """One data object of a native export, as listed in ``manifest-files.json``."""

    key: str            # full object key: <prefix>/AWSDynamoDB/<id>/data/<name>.json.gz
    item_count: int     # lines in the file, readable or not
    md5: bytes          # MD5 digest of the object's bytes

    @classmethod
    def of(cls, key: str, body: bytes, item_count: int) -> "ExportFile":
        return cls(key, item_count, hashlib.md5(body).digest())


def _token(rng: random.Random, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz234567") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def export_id(rng: random.Random, when: datetime) -> str:
    """An ExportId in AWS's shape: 14 digits of epoch milliseconds, a dash, 8 hex digits."""
    return f"{int(when.timestamp() * 1000):014d}-{_token(rng, 8, '0123456789abcdef')}"


def export_manifests(files: list[ExportFile], *, base: str, bucket: str, prefix: str, table: str,
                     when: datetime, region: str = "us-east-1",
                     account: str = "123456789012") -> dict[str, bytes]:
    """``manifest-summary.json``, ``manifest-files.json``, their ``.checksum`` files and ``_started``.

    ``base`` is the export directory key (``<prefix>/AWSDynamoDB/<ExportId>``).
    """
    eid = base.rstrip("/").rsplit("/", 1)[-1]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    files_doc = b"".join(
        orjson.dumps({"itemCount": f.item_count, "md5Checksum": base64.b64encode(f.md5).decode(),
                      "etag": f.md5.hex(), "dataFileS3Key": f.key}) + b"\n"
        for f in files
    )
    table_arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    summary = orjson.dumps({
        "version": "2020-06-30", "exportArn": f"{table_arn}/export/{eid}",
        "startTime": stamp, "endTime": stamp, "tableArn": table_arn,
        "tableId": hashlib.md5(table_arn.encode()).hexdigest(), "exportTime": stamp,
        "s3Bucket": bucket, "s3Prefix": prefix or None, "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None, "manifestFilesS3Key": f"{base}/manifest-files.json",
        "billedSizeBytes": 0, "itemCount": sum(f.item_count for f in files),
        "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT",
    }, option=orjson.OPT_INDENT_2)
    return {
        f"{base}/_started": b"",
        f"{base}/manifest-files.json": files_doc,
        f"{base}/manifest-files.checksum": hashlib.md5(files_doc).hexdigest().encode(),
        f"{base}/manifest-summary.json": summary,
        f"{base}/manifest-summary.checksum": hashlib.md5(summary).hexdigest().encode(),
    }


def export_objects(lines: list[bytes], *, bucket: str, prefix: str, table: str, files: int = 4,
                   empty_files: int = 1, seed: int = SEED,
                   when: datetime | None = None) -> tuple[str, dict[str, bytes]]:
    """A whole native export (``DYNAMODB_JSON``) of ``lines``: returns (export dir key, objects).

    Lines are dealt round-robin into ``files`` gzipped data objects, plus ``empty_files`` empty
    ones (empty partitions); every line counts in ``itemCount``, readable or not.
    """
    rng = random.Random(seed)
    when = when or datetime(2024, 6, 11, 9, 30, tzinfo=timezone.utc)
    base = f"{prefix.strip('/')}/AWSDynamoDB/{export_id(rng, when)}".lstrip("/")
    objects: dict[str, bytes] = {}
    listed: list[ExportFile] = []
    for n in range(files + empty_files):
        chunk = lines[n::files] if n < files else []
        body, count = gzip_lines(chunk)
        key = f"{base}/data/{_token(rng, 26)}.json.gz"
        objects[key] = body
        listed.append(ExportFile.of(key, body, count))
    objects.update(export_manifests(listed, base=base, bucket=bucket, prefix=prefix.strip("/"),
                                    table=table, when=when))
    return base, objects


def datapipeline_objects(items: list[dict[str, Any]], *, bucket: str, prefix: str, files: int = 2,
                         compress: bool = False, extra_lines: Iterable[bytes] = ()) -> dict[str, bytes]:
    """A Data Pipeline export of ``items``: extension-less part files plus a ``manifest``."""
    prefix = prefix.strip("/")
    lines = [orjson.dumps(to_datapipeline(i), default=_b64) for i in items] + list(extra_lines)
    objects: dict[str, bytes] = {}
    entries = []
    for n in range(files):
        key = f"{prefix}/ae10f955-6d2c-4b33-9a61-2d1b6f0c7e4{n}_{n:06d}"
        chunk = lines[n::files]
        if compress:
            body, _ = gzip_lines(chunk)
        else:
            body = b"".join(line + b"\n" for line in chunk)
        objects[key] = body
        entries.append({"url": f"s3://{bucket}/{key}", "mandatory": True})
    objects[f"{prefix}/manifest"] = orjson.dumps({"name": "DynamoDB-export", "version": 3, "entries": entries})
    return objects


def put_objects(s3: Any, bucket: str, objects: dict[str, bytes]) -> None:
    """Create ``bucket`` if needed and upload ``objects`` (key -> bytes) into it."""
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:  # botocore ClientError 404: create it
        s3.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

