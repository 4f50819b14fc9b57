"""CNI errors as the spec defines them: a numeric code, ``msg`` and ``details``.

Every failure leaves the plugin as one of these, printed as JSON on stdout with a
non-zero exit, so a runtime always learns what went wrong and which field was bad.
"""

from __future__ import annotations

import json
from enum import IntEnum


class ErrorCode(IntEnum):
    """Well-known error codes of CNI spec 1.1.0 (codes 100+ are the plugin's own)."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT = 4
    IO_FAILURE = 5
    DECODE_FAILURE = 6
    INVALID_CONFIG = 7
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50
    NOT_AVAILABLE_DISRUPTING = 51
    # netsched-cni's own codes
    NETLINK_FAILURE = 100
    RESERVATION_UNAVAILABLE = 101
    CHECK_MISMATCH = 102
    RESERVATION_REJECTED = 103


class CNIError(Exception):
    """An error the plugin reports to the runtime in the spec's JSON shape."""

    def __init__(self, code: ErrorCode, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> str:
        body: dict[str, object] = {"cniVersion": cni_version, "code": int(self.code), "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return json.dumps(body)


def invalid_config(field: str, value: object, why: str) -> CNIError:
    """The one shape of a bad-config error: names the field and the offending value."""
    return CNIError(ErrorCode.INVALID_CONFIG, f"{field}: {value!r} {why}", f"field {field}")
