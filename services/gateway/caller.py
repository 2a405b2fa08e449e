"""The HTTP face of :mod:`services.gateway.auth`: who is calling, or the
problem response that refuses the request."""

from __future__ import annotations

from starlette.requests import Request

from services.gateway.auth import (
    CHALLENGE,
    Applications,
    Authenticated,
    AuthError,
    RegistryLoading,
    authenticate,
)
from services.gateway.bearer import DEFAULT_LEEWAY_S
from services.gateway.problems import ProblemResponse, problem_response

# Seconds a client is told to wait while the registry loads (a few hundred ms
# after a start, longer on a large registry).
REGISTRY_RETRY_AFTER = "1"


def identify(
    request: Request, applications: Applications, *, jwt_leeway_s: float = DEFAULT_LEEWAY_S
) -> Authenticated | ProblemResponse:
    """The authenticated caller; 401 for bad credentials, 503 while the
    registry is still loading (valid credentials must never see a 401)."""
    return identify_by_headers(
        request.headers.getlist("authorization"), applications, jwt_leeway_s=jwt_leeway_s
    )


def identify_by_headers(
    authorization: list[str],
    applications: Applications,
    *,
    jwt_leeway_s: float = DEFAULT_LEEWAY_S,
) -> Authenticated | ProblemResponse:
    """:func:`identify` from the request's ``Authorization`` header values."""
    try:
        return authenticate(authorization, applications, jwt_leeway_s=jwt_leeway_s)
    except RegistryLoading:
        return problem_response(
            503,
            "The application registry is still loading; retry shortly.",
            headers={"Retry-After": REGISTRY_RETRY_AFTER},
        )
    except AuthError as exc:
        return problem_response(401, str(exc), headers={"WWW-Authenticate": CHALLENGE})
