"""The migration spec (``keyshift.toml``): one migration, validated at load.

The keys documented in the README are a contract: scripts and acceptance checks outside this
repository write them. A bad spec fails here with the offending key named, never later.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError

__all__ = [
    "Spec",
    "SourceSpec",
    "TargetSpec",
    "NormalizeSpec",
    "ReferenceSpec",
    "ControlSpec",
    "DEFAULT_RULES",
    "KNOWN_RULES",
    "load_spec",
    "parse_spec",
]

#: The default normalization (brief section 4), in order.
DEFAULT_RULES = ("strip-ignorable", "nfkc", "fold-space")
#: Every rule name a spec may use; ``casefold`` is optional.
KNOWN_RULES = ("strip-ignorable", "nfkc", "fold-space", "casefold")


@dataclass(frozen=True)
class SourceSpec:
    """The live table being migrated away from."""

    table: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    """The new table. ``partition_key`` defaults to the source's key name."""

    table: str
    partition_key: str
    legacy_attribute: str | None = None


@dataclass(frozen=True)
class NormalizeSpec:
    """Which named rules turn a raw identifier into its canonical form, in order."""

    rules: tuple[str, ...] = DEFAULT_RULES


@dataclass(frozen=True)
class ReferenceSpec:
    """Optional upstream data mapping a (normalized) name to a new id."""

    uri: str
    name_field: str = "name"
    id_field: str = "id"
    format: str = "auto"  # auto | jsonl | csv


@dataclass(frozen=True)
class ControlSpec:
    """The control table and flag item every service reads to pick a table."""

    table: str = "keyshift-control"
    flag: str = ""
    #: ``shadow``: the fraction of reads routers also make on the new table, to count mismatches.
    shadow_sample: float = 0.01
    #: The cut-over gate: forward sync's ``lag_seconds`` must be at most this.
    max_lag_seconds: float = 5.0
    #: The two-person rule: ``flag flip`` files a request another operator approves.
    require_approval: bool = False
    #: How long an approval request stays open.
    approval_ttl_minutes: float = 30.0
    #: Routers seen within this many minutes must have acknowledged the flag's version.
    router_window_minutes: float = 5.0


@dataclass(frozen=True)
class StreamSpec:
    """How stream sync (local replay and Lambda handler) treats what the plan did not see."""

    #: ``hold``: a record whose raw identifier is not in the keymap is kept (an ``unmapped`` case)
    #: until an operator decides; ``rule``: the normalization rules decide automatically when the
    #: canonical form maps to exactly one existing new id and creates no conflict, else it holds.
    new_identifiers: str = "hold"
    #: DynamoDB table where the Lambda handler keeps held records (the local replay keeps them in
    #: the workspace); None: the Lambda counts and logs them (a failure would stall the shard).
    hold_table: str | None = None
    #: DynamoDB table where the Lambda handlers of both directions log their own writes, so that
    #: neither replays the other's writes back (the local replays use the workspace).
    echo_table: str | None = None


@dataclass(frozen=True)
class Spec:
    """A whole migration spec; ``path`` is where it was read from (None when parsed from text)."""

    source: SourceSpec
    target: TargetSpec
    normalize: NormalizeSpec = field(default_factory=NormalizeSpec)
    reference: ReferenceSpec | None = None
    control: ControlSpec | None = None
    path: Path | None = None
    stream: StreamSpec = field(default_factory=StreamSpec)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (for ``--json`` output and the audit log)."""
        out: dict[str, Any] = {
            "source": {k: v for k, v in vars(self.source).items() if v is not None},
            "target": {k: v for k, v in vars(self.target).items() if v is not None},
            "normalize": {"rules": list(self.normalize.rules)},
        }
        if self.reference:
            out["reference"] = dict(vars(self.reference))
        if self.control:
            out["control"] = dict(vars(self.control))
        out["stream"] = {k: v for k, v in vars(self.stream).items() if v is not None}
        return out


_SECTIONS = {"source", "target", "normalize", "reference", "control", "stream"}


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file. Raises :class:`SpecError` naming the offending key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path} (pass --spec PATH)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec {path}: {exc}") from None
    spec = parse_spec(text, origin=str(path))
    return Spec(spec.source, spec.target, spec.normalize, spec.reference, spec.control, path, spec.stream)


def parse_spec(text: str, origin: str = "<spec>") -> Spec:
    """Validate spec text; every error message names ``section.key``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise SpecError(f"{origin}: unknown section [{unknown[0]}] (known: {', '.join(sorted(_SECTIONS))})")
    src = _section(data, "source", origin, required=True)
    tgt = _section(data, "target", origin, required=True)
    source = SourceSpec(
        table=_str(src, "source", "table", origin, required=True),
        partition_key=_str(src, "source", "partition_key", origin, required=True),
        sort_key=_str(src, "source", "sort_key", origin),
    )
    _no_extra(src, "source", {"table", "partition_key", "sort_key"}, origin)
    target = TargetSpec(
        table=_str(tgt, "target", "table", origin, required=True),
        partition_key=_str(tgt, "target", "partition_key", origin) or source.partition_key,
        legacy_attribute=_str(tgt, "target", "legacy_attribute", origin),
    )
    _no_extra(tgt, "target", {"table", "partition_key", "legacy_attribute"}, origin)
    if target.table == source.table:
        raise SpecError(f"{origin}: target.table must differ from source.table ({source.table!r})")
    if target.legacy_attribute and target.legacy_attribute in (target.partition_key, source.sort_key):
        raise SpecError(f"{origin}: target.legacy_attribute must not be a key attribute")

    norm = _section(data, "normalize", origin)
    rules: tuple[str, ...] = DEFAULT_RULES
    if "rules" in norm:
        raw_rules = norm["rules"]
        if not isinstance(raw_rules, list) or not all(isinstance(r, str) for r in raw_rules):
            raise SpecError(f"{origin}: normalize.rules must be a list of rule names")
        for rule in raw_rules:
            if rule not in KNOWN_RULES:
                raise SpecError(
                    f"{origin}: normalize.rules: unknown rule {rule!r} (known: {', '.join(KNOWN_RULES)})"
                )
        if len(set(raw_rules)) != len(raw_rules):
            raise SpecError(f"{origin}: normalize.rules lists a rule twice")
        rules = tuple(raw_rules)
    _no_extra(norm, "normalize", {"rules"}, origin)

    reference = None
    if "reference" in data:
        ref = _section(data, "reference", origin)
        fmt = _str(ref, "reference", "format", origin) or "auto"
        if fmt not in ("auto", "jsonl", "csv"):
            raise SpecError(f"{origin}: reference.format must be auto, jsonl or csv, not {fmt!r}")
        reference = ReferenceSpec(
            uri=_str(ref, "reference", "uri", origin, required=True),
            name_field=_str(ref, "reference", "name_field", origin) or "name",
            id_field=_str(ref, "reference", "id_field", origin) or "id",
            format=fmt,
        )
        _no_extra(ref, "reference", {"uri", "name_field", "id_field", "format"}, origin)

    control = None
    if "control" in data:
        ctl = _section(data, "control", origin)
        control = ControlSpec(
            table=_str(ctl, "control", "table", origin) or "keyshift-control",
            flag=_str(ctl, "control", "flag", origin, required=True),
            shadow_sample=_number(ctl, "control", "shadow_sample", origin, 0.01, low=0.0, high=1.0),
            max_lag_seconds=_number(ctl, "control", "max_lag_seconds", origin, 5.0, low=0.0),
            require_approval=_bool(ctl, "control", "require_approval", origin, False),
            approval_ttl_minutes=_number(ctl, "control", "approval_ttl_minutes", origin, 30.0, low=0.0,
                                         positive=True),
            router_window_minutes=_number(ctl, "control", "router_window_minutes", origin, 5.0, low=0.0,
                                          positive=True),
        )
        _no_extra(ctl, "control", {"table", "flag", "shadow_sample", "max_lag_seconds", "require_approval",
                                   "approval_ttl_minutes", "router_window_minutes"}, origin)

    stm = _section(data, "stream", origin)
    new_identifiers = _str(stm, "stream", "new_identifiers", origin) or "hold"
    if new_identifiers not in ("hold", "rule"):
        raise SpecError(f"{origin}: stream.new_identifiers must be hold or rule, not {new_identifiers!r}")
    stream = StreamSpec(new_identifiers=new_identifiers, hold_table=_str(stm, "stream", "hold_table", origin),
                        echo_table=_str(stm, "stream", "echo_table", origin))
    _no_extra(stm, "stream", {"new_identifiers", "hold_table", "echo_table"}, origin)
    return Spec(source, target, NormalizeSpec(rules), reference, control, stream=stream)


def _section(data: dict, name: str, origin: str, required: bool = False) -> dict:
    if name not in data:
        if required:
            raise SpecError(f"{origin}: missing section [{name}]")
        return {}
    value = data[name]
    if not isinstance(value, dict):
        raise SpecError(f"{origin}: {name} must be a table ([{name}])")
    return value


def _str(section: dict, sname: str, key: str, origin: str, required: bool = False) -> str | None:
    if key not in section:
        if required:
            raise SpecError(f"{origin}: missing key {sname}.{key}")
        return None
    value = section[key]
    if not isinstance(value, str):
        raise SpecError(f"{origin}: {sname}.{key} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise SpecError(f"{origin}: {sname}.{key} must not be empty")
    return value


def _number(section: dict, sname: str, key: str, origin: str, default: float, *, low: float | None = None,
            high: float | None = None, positive: bool = False) -> float:
    if key not in section:
        return default
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{origin}: {sname}.{key} must be a number, not {type(value).__name__}")
    value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high) \
            or (positive and value <= 0):
        bounds = f"between {low:g} and {high:g}" if high is not None else ("above 0" if positive else f"at least {low:g}")
        raise SpecError(f"{origin}: {sname}.{key} must be {bounds}, not {value:g}")
    return value


def _bool(section: dict, sname: str, key: str, origin: str, default: bool) -> bool:
    if key not in section:
        return default
    value = section[key]
    if not isinstance(value, bool):
        raise SpecError(f"{origin}: {sname}.{key} must be true or false, not {type(value).__name__}")
    return value


def _no_extra(section: dict, sname: str, allowed: set[str], origin: str) -> None:
    extra = sorted(set(section) - allowed)
    if extra:
        raise SpecError(f"{origin}: unknown key {sname}.{extra[0]} (known: {', '.join(sorted(allowed))})")
