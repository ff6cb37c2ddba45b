"""The keyshift.toml contract: valid specs load, bad ones fail naming the key."""

import pytest

from keyshift.core.errors import SpecError
from keyshift.core.spec import DEFAULT_RULES, load_spec, parse_spec

FULL = """
[source]
table = "orders"
partition_key = "customer"
sort_key = "order_id"
[target]
table = "orders_v2"
partition_key = "customer_id"
legacy_attribute = "legacy_customer"
[normalize]
rules = ["strip-ignorable", "nfkc", "fold-space", "casefold"]
[reference]
uri = "s3://upstream/customers.jsonl"
name_field = "name"
id_field = "id"
[control]
table = "keyshift-control"
flag = "orders-cutover"
"""

MINIMAL = """
[source]
table = "orders"
partition_key = "customer"
[target]
table = "orders_v2"
"""


def test_full_spec_loads_every_key():
    spec = parse_spec(FULL)
    assert spec.source.table == "orders"
    assert spec.source.sort_key == "order_id"
    assert spec.target.partition_key == "customer_id"
    assert spec.target.legacy_attribute == "legacy_customer"
    assert spec.normalize.rules == ("strip-ignorable", "nfkc", "fold-space", "casefold")
    assert spec.reference.uri == "s3://upstream/customers.jsonl"
    assert spec.control.flag == "orders-cutover"


def test_minimal_spec_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.target.partition_key == "customer"
    assert spec.normalize.rules == DEFAULT_RULES
    assert spec.source.sort_key is None
    assert spec.reference is None and spec.control is None


@pytest.mark.parametrize(
    "text, key",
    [
        (MINIMAL.replace('table = "orders"\n', "", 1), "source.table"),
        (MINIMAL + '[normalize]\nrules = ["nfkc", "upper"]\n', "normalize.rules"),
        (MINIMAL.replace('partition_key = "customer"', "partition_key = 3"), "source.partition_key"),
        (MINIMAL.replace("[target]\ntable = \"orders_v2\"\n", ""), "[target]"),
        (MINIMAL + "[reference]\nname_field = 'n'\n", "reference.uri"),
        (MINIMAL + "[control]\ntable = 'c'\n", "control.flag"),
        (MINIMAL + "[sauce]\nx = 1\n", "[sauce]"),
        (MINIMAL.replace('table = "orders_v2"', 'table = "orders_v2"\npartiton_key = "x"'), "target.partiton_key"),
        (MINIMAL + "[normalize]\nrules = 'nfkc'\n", "normalize.rules"),
        (MINIMAL.replace('"orders_v2"', '"orders"'), "target.table"),
        ("[source\n", "TOML"),
    ],
)
def test_bad_spec_names_the_offending_key(text, key):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert key in str(info.value)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_load_spec_records_path(tmp_path):
    path = tmp_path / "keyshift.toml"
    path.write_text(FULL)
    assert load_spec(path).path == path
