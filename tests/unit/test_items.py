"""Item sizes and key checks on wire-format items."""

from keyshift.core.items import item_size, key_problem, utf8_len


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
