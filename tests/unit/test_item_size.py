"""The one DynamoDB item-size rule, shared by the cost model (write units) and the local pipes (SizeBytes)."""

import pytest

from taskrail.item_size import item_size_bytes


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"ab": {"S": "cde"}}, 2 + 3),
        ({"ab": {"S": "é"}}, 2 + 2),  # UTF-8 bytes, not characters
        ({"n": {"N": "12345"}}, 1 + 4),  # one byte per two significant digits, plus one
        ({"n": {"N": "1000"}}, 1 + 2),  # trailing zeroes are trimmed: one significant digit
        ({"n": {"N": "-0.0012"}}, 1 + 2),  # and leading ones, and the sign and the point
        ({"f": {"BOOL": True}, "z": {"NULL": True}}, 1 + 1 + 1 + 1),
        ({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}, 1 + 3 + (1 + 2) + (1 + 2)),
        ({"m": {"M": {"k": {"S": "v"}}}}, 1 + 3 + (1 + 1 + 1)),
    ],
)
def test_an_items_size_is_its_names_plus_its_values_as_dynamodb_counts_them(item, size):
    """As "Item sizes and formats" (Amazon DynamoDB Developer Guide) counts them."""
    assert item_size_bytes(item) == size
