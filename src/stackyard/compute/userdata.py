"""User data for a new instance: read, size-check and base64-encode before any cloud call (pure)."""

from __future__ import annotations

import base64
from pathlib import Path

from stackyard.errors import ValidationError

# NOTE: Nova rejects user_data whose base64 text is longer than 65535 bytes (compute API reference).
MAX_ENCODED_BYTES = 65535


def encode_user_data(raw: bytes, *, field: str = "user_data") -> str:
    encoded = base64.b64encode(raw).decode("ascii")
    if len(encoded) > MAX_ENCODED_BYTES:
        raise ValidationError(
            field,
            f"user data is {len(raw)} bytes ({len(encoded)} base64-encoded); Nova accepts at most "
            f"{MAX_ENCODED_BYTES} encoded bytes — compress it (cloud-init reads gzip) or shorten it",
        )
    return encoded


def user_data_from_file(path: Path, *, field: str = "user_data_file") -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError(field, f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValidationError(field, f"{path} is a directory, not a file") from None
    except PermissionError:
        raise ValidationError(field, f"cannot read {path}: permission denied") from None
    if not raw:
        raise ValidationError(field, f"{path} is empty")
    return encode_user_data(raw, field=field)


def user_data_from_text(text: str, *, field: str = "user_data") -> str:
    if not text:
        raise ValidationError(field, "user data is empty")
    return encode_user_data(text.encode("utf-8"), field=field)
