"""What a failed call to the API server means, in the five cases callers act on.

The official client raises ``ApiException`` for an answer outside 2xx (with the
server's ``Status`` object as its body, or, for a watch's ``ERROR`` event, only a
reason), ``ApiException`` with status 0 when TLS fails, and urllib3's errors or
``OSError`` when there is no answer at all (refused, reset, timed out, retries spent).
:func:`failure` turns each into one :class:`ApiFailure` subclass:

- :class:`NotFound` (404): the object, or its namespace, does not exist.
- :class:`Conflict` (409): someone else wrote first: ``AlreadyExists`` on a create, or
  ``Conflict`` on a stale ``resourceVersion``, a failed UID precondition, a Binding of a
  pod that already has a node.
- :class:`Gone` (410): the ``resourceVersion`` or ``continue`` token is older than the
  history the server keeps (``Expired``/``Gone``): list again, then watch from there.
- :class:`Unavailable` (5xx, 429, no answer): the server is away, overloaded or
  throttling (429 is also what an eviction blocked by a PodDisruptionBudget answers):
  the same request may work later.
- :class:`Refused` (any other status: 400, 401, 403, 405, 415, 422...): the server
  understood and said no; the same request will not work later.

Each carries the HTTP status and reason, the ``Status`` reason and the server's own
message, and says all of them in its text (:func:`describe`), so that a log line names
what the server answered, not only that it failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, ValidationError
from urllib3.exceptions import HTTPError

RAW_BODY_CHARS = 200
"""How much of a body that is not a ``Status`` (a proxy's HTML page) a message quotes."""


class KubeError(RuntimeError):
    """Anything this package raises: no usable configuration, or a failed API call."""


class NoConfiguration(KubeError):
    """The credential rule found nothing usable where it looked."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"no Kubernetes API configuration: {where}: {detail}")
        self.where = where
        """What the rule tried: ``kubeconfig PATH`` or ``service account (TOKEN PATH)``."""
        self.detail = detail
        """What the client's loader said."""


class ApiFailure(KubeError):
    """A call to the API server failed; the subclass says what that means to the caller."""

    def __init__(
        self,
        text: str,
        *,
        status: int | None = None,
        reason: str = "",
        status_reason: str = "",
        message: str = "",
    ) -> None:
        super().__init__(text)
        self.status = status
        """The HTTP status; None when the server did not answer (0 for a TLS failure)."""
        self.reason = reason
        """The HTTP reason phrase (``Conflict``), or for a watch's ERROR event
        ``Status.reason: Status.message`` as the client makes it."""
        self.status_reason = status_reason
        """The ``Status`` object's machine-readable reason (``AlreadyExists``, ``Expired``)."""
        self.message = message
        """The server's own words: the ``Status`` message, else the start of the body,
        else the reason, else what the connection error said."""


class NotFound(ApiFailure):
    """404: the object (or its namespace) does not exist."""


class Conflict(ApiFailure):
    """409: another writer came first (``AlreadyExists``, stale version, failed precondition)."""


class Gone(ApiFailure):
    """410: the version or continue token is older than the server's history; list again."""


class Unavailable(ApiFailure):
    """No answer, 5xx or 429: the same request may succeed later."""


class Refused(ApiFailure):
    """Any other answer (400, 401, 403, 415, 422...): the same request will not succeed."""


class _Status(BaseModel):
    """The fields of a ``meta/v1 Status`` body this package reads."""

    model_config = ConfigDict(extra="ignore")

    kind: str = ""
    reason: str = ""
    message: str = ""


_BY_STATUS: dict[int, type[ApiFailure]] = {404: NotFound, 409: Conflict, 410: Gone, 429: Unavailable}


def _kind_of(status: int) -> type[ApiFailure]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 0 or status >= 500:
        return Unavailable
    return Refused


def failure(error: ApiException | HTTPError | OSError) -> ApiFailure:
    """The :class:`ApiFailure` that ``error`` (raised by the client) means."""
    if not isinstance(error, ApiException):
        text = str(error) or type(error).__name__
        return Unavailable(f"API server unreachable: {text}", message=text)
    status, reason = int(error.status or 0), str(error.reason or "")
    status_reason, message = _read_body(error.body)
    message = message or reason
    if status == 0:  # the client's own: TLS failed before any answer
        return Unavailable(f"API server unreachable: {reason}", status=0, reason=reason,
                           message=message)
    text = f"API server answered {status} {reason}"
    if message and message != reason:
        text += f": {message}"
    return _kind_of(status)(
        text, status=status, reason=reason, status_reason=status_reason, message=message
    )


def describe(error: ApiException | HTTPError | OSError) -> str:
    """One line naming the status, the reason and the server's message (or the
    connection error): ``API server answered 409 Conflict: Operation cannot be ...``."""
    return str(failure(error))


@contextmanager
def api_errors() -> Iterator[None]:
    """Raise the :class:`ApiFailure` for whatever the client raises inside the block
    (calls, and the iteration of a watch's stream), chained to the client's error.

    Keep the block to the API call: an ``OSError`` of anything else inside it would be
    reported as the server being unreachable."""
    try:
        yield
    except (ApiException, HTTPError, OSError) as error:
        raise failure(error) from error


def _read_body(body: object) -> tuple[str, str]:
    """(Status reason, Status message) of an error body; a body that is not a Status
    gives its first characters as the message."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return "", ""
    try:
        status = _Status.model_validate_json(body)
    except ValidationError:
        return "", body.strip()[:RAW_BODY_CHARS]
    if status.kind != "Status":
        return "", body.strip()[:RAW_BODY_CHARS]
    return status.reason, status.message

