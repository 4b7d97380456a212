"""Two data keys under one id (a reused id, or new material under a compromised key's
id) are refused: the later entry replaced the first in the cipher's key map while the
first stayed the newest, so new values were sealed with the old material under the new
key's id, rotate-data found nothing to do, and retiring the old entry then made every
value unreadable."""

import base64
import os

import pytest
from pydantic import SecretStr, ValidationError

from gateway.adapters.fields import FieldCipher
from gateway.config import SecurityConfig

NEW = os.urandom(32)
OLD = os.urandom(32)


def test_two_data_keys_with_one_id_are_refused_by_the_cipher() -> None:
    with pytest.raises(ValueError, match="'k1' is used by two keys"):
        FieldCipher([("k1", NEW), ("k1", OLD)])
    FieldCipher([("k2", NEW), ("k1", OLD)])  # distinct ids: fine


def test_two_data_keys_with_one_id_are_refused_by_the_configuration() -> None:
    entries = [SecretStr(f"k1:{base64.b64encode(k).decode()}") for k in (NEW, OLD)]
    with pytest.raises(ValidationError) as refused:
        SecurityConfig.model_validate({"data_keys": entries})
    assert "'k1' is used by two keys" in str(refused.value)
    assert base64.b64encode(NEW).decode() not in str(refused.value)  # no key in the error
