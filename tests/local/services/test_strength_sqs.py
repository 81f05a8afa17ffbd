"""The size SQS counts for a message with a binary attribute (docs/TEST-STRENGTH.md, area emulator).

AWS: a message's size limit counts the body and each attribute's name, data type and value ("Amazon SQS message
attributes", Amazon SQS Developer Guide: "Each message attribute ... counts towards the maximum message size");
a Binary value counts its bytes, however the request carried them (raw bytes in-process, base64 on the wire).
"""

from __future__ import annotations

import base64

import pytest

from taskrail.local.services.sqs import message_size

PAYLOAD = b"\x00\x01\x02\xff"


@pytest.mark.parametrize("value", [PAYLOAD, base64.b64encode(PAYLOAD).decode()], ids=["bytes", "base64"])
def test_a_binary_attribute_counts_its_name_type_and_decoded_bytes(value: bytes | str):
    attributes = {"sig": {"DataType": "Binary", "BinaryValue": value}}

    # "hi" (2) + "sig" (3) + "Binary" (6) + 4 bytes
    assert message_size("hi", attributes) == 15
