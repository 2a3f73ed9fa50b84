"""API errors in the OpenAI error shape, each with a human message."""

from __future__ import annotations

import math
from typing import Any

# HTTP status -> OpenAI error type.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


class ApiError(Exception):
    """An error the API answers with ``{"error": {"message", "type", "code"}}``.

    Args:
        status: the HTTP status.
        message: a sentence for a person: what went wrong and what to do.
        code: a short machine-readable code (``invalid_api_key``,
            ``rate_limit_exceeded``, ``model_loading``, ...).
        retry_after: seconds after which the request may succeed (sent as
            ``Retry-After``, rounded up).
        param: the request field at fault, when there is one.
    """

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 retry_after: float | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after
        self.param = param

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def headers(self) -> dict[str, str]:
        """``Retry-After`` (whole seconds, at least 1) when there is one."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    """A 400 for a request Docent cannot take as it is."""
    return ApiError(400, message, code=code, param=param)
