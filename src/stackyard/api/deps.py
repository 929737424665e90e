"""FastAPI dependencies: the authenticated principal, its scope, the provider, database units of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from stackyard.api.state import AppState, app_state
from stackyard.auth.models import Principal, Role
from stackyard.db.engine import transaction
from stackyard.errors import NotFound, PermissionDenied
from stackyard.pricing.service import PricingService
from stackyard.providers.base import Provider, Scope

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from POST /api/v1/auth/tokens, or an API key (sy_...).",
)
_keystone = APIKeyHeader(
    name="X-Auth-Token", auto_error=False, scheme_name="keystone", description="A Keystone token."
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apikey", description="An API key.")

State = Annotated[AppState, Depends(app_state)]


def current_principal(
    request: Request,
    state: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    keystone_token: Annotated[str | None, Security(_keystone)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    """Authenticate by exactly one of: bearer token or API key, Keystone token, API key; then rate-limit."""
    principal = state.auth.authenticate(
        bearer=bearer.credentials if bearer is not None else None,
        keystone_token=keystone_token,
        api_key=api_key,
    )
    request.state.principal = principal.subject
    state.limiter.check(principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def admin_principal(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.ADMIN:
        raise PermissionDenied("this needs the admin role")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


def scope_of(principal: Principal) -> Scope:
    """Admins see every project; members their own."""
    is_admin = principal.role is Role.ADMIN
    return Scope(
        project_id=None if is_admin else principal.project_id,
        is_admin=is_admin,
        token=principal.keystone_token,
        token_project_id=principal.project_id if principal.keystone_token else None,
    )


def current_scope(principal: CurrentPrincipal) -> Scope:
    return scope_of(principal)


CurrentScope = Annotated[Scope, Depends(current_scope)]


def provider_of(
    state: State,
    provider: Annotated[str, Path(min_length=1, max_length=255, description="Provider name.")],
    _principal: CurrentPrincipal,
) -> Provider:
    # Authenticated first: FastAPI resolves a route's dependencies in order, and routes name the
    # provider before the caller, so without this an anonymous caller learned which providers exist.
    found = state.providers.get(provider)
    if found is None:
        raise NotFound(f"no provider named {provider!r}; GET /api/v1/providers lists them")
    return found


ProviderDep = Annotated[Provider, Depends(provider_of)]


def pricing_service(state: State) -> Iterator[PricingService]:
    """A unit of work on the database: committed when the route returns, rolled back if it raises."""
    with transaction(state.sessions) as session:
        yield PricingService(session)


# NOTE: scope="function" commits before the response is sent. With FastAPI's default ("request") the
# commit ran after it, so a client's next request, served by another worker, could still see the old
# price book (found by the two-worker API tests).
Pricing = Annotated[PricingService, Depends(pricing_service, scope="function")]
