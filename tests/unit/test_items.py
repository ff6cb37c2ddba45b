"""Item sizes and key checks on wire-format items."""

from keyshift.core.kernel.items import for_botocore, item_size, key_problem, utf8_len


def test_utf8_len_counts_bytes():
    assert utf8_len("abc") == 3
    assert utf8_len("é") == 2
    assert utf8_len("\u200b") == 3


def test_item_size_counts_names_and_values():
    item = {"pk": {"S": "abc"}, "n": {"N": "12345"}, "b": {"B": "AQID"}, "t": {"BOOL": True}}
    # pk(2)+3, n(1)+(5 digits -> 3+1=4), b(1)+3 bytes, t(1)+1
    assert item_size(item) == 5 + 5 + 4 + 2


def test_item_size_nested():
    item = {"m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"S": "x"}, {"NULL": True}]}}
    assert item_size(item) == (1 + 3 + 1 + 1 + 1) + (1 + 3 + 2 + 2)


def test_key_problems():
    assert key_problem({"pk": {"S": "a"}}, "pk", role="identifier") is None
    assert "missing identifier" in key_problem({}, "pk", role="identifier")
    assert "not a string" in key_problem({"pk": {"N": "1"}}, "pk", role="identifier")
    assert key_problem({"sk": {"N": "1"}}, "sk", role="sort key") is None
    assert "not a scalar" in key_problem({"sk": {"L": []}}, "sk", role="sort key")


# -- for_botocore: binary as bytes, because botocore base64-encodes whatever a blob is ----------
def test_for_botocore_returns_items_without_binary_unchanged():
    item = {"k": {"S": "a"}, "m": {"M": {"x": {"L": [{"N": "1"}, {"SS": ["a"]}]}}}}
    assert for_botocore(item) is item


def test_for_botocore_decodes_binary_at_every_depth_and_leaves_the_input_alone():
    item = {"k": {"S": "a"}, "b": {"B": "AQID"}, "m": {"M": {"s": {"BS": ["AA==", "/w=="]}}},
            "l": {"L": [{"M": {"x": {"B": "BAU="}}}, {"S": "AQID"}]}}
    out = for_botocore(item)
    assert out == {"k": {"S": "a"}, "b": {"B": b"\x01\x02\x03"},
                   "m": {"M": {"s": {"BS": [b"\x00", b"\xff"]}}},
                   "l": {"L": [{"M": {"x": {"B": b"\x04\x05"}}}, {"S": "AQID"}]}}
    assert item["b"] == {"B": "AQID"}  # the dump's item is not modified


def test_for_botocore_keeps_values_that_already_are_bytes():
    item = {"b": {"B": b"\x01"}, "s": {"BS": [b"\x02"]}}
    assert for_botocore(item) == item


def test_for_botocore_bytes_round_trip_through_botocore_serialization():
    """What the restore sends is what DynamoDB stores: botocore encodes bytes once."""
    from botocore.serialize import create_serializer
    from botocore.session import get_session

    model = get_session().get_service_model("dynamodb")
    op = model.operation_model("PutItem")
    body = create_serializer("json").serialize_to_request(
        {"TableName": "t", "Item": for_botocore({"b": {"B": "AQID"}})}, op)["body"]
    assert b'"B": "AQID"' in body or b'"B":"AQID"' in body
