"""Authentication: bearer tokens for Keystone credentials, who am I, API keys (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal, State
from stackyard.auth.models import ApiKeyInfo, AppCredentialLogin, PasswordLogin, Principal, Role

router = APIRouter(prefix="/api/v1", tags=["auth"])

Short = Annotated[str, Field(min_length=1, max_length=255)]


class TokenCreate(BaseModel):
    """Keystone credentials: a password (scoped to a project) or an application credential."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["password", "application_credential"] = "password"
    username: Short | None = None
    password: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    project_name: Short | None = None
    project_id: Short | None = None
    user_domain_name: Short = "Default"
    project_domain_name: Short = "Default"
    application_credential_id: Short | None = None
    application_credential_name: Short | None = None
    application_credential_secret: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> TokenCreate:
        if self.method == "password":
            for name in ("username", "password"):
                if not getattr(self, name):
                    raise ValueError(f"{name} is required for the password method")
            if not (self.project_name or self.project_id):
                raise ValueError("project_name or project_id is required for the password method")
        else:
            if not self.application_credential_secret:
                raise ValueError("application_credential_secret is required")
            if not (self.application_credential_id or (self.application_credential_name and self.username)):
                raise ValueError("application_credential_id, or its name and username, is required")
        return self


class PrincipalRead(BaseModel):
    subject: str
    name: str
    role: Role
    project_id: str | None
    project_name: str | None
    method: str
    expires_at: datetime | None

    @classmethod
    def of(cls, principal: Principal) -> PrincipalRead:
        return cls(
            subject=principal.subject,
            name=principal.name,
            role=principal.role,
            project_id=principal.project_id,
            project_name=principal.project_name,
            method=principal.method.value,
            expires_at=principal.expires_at,
        )


class TokenRead(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: datetime
    principal: PrincipalRead


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short
    role: Role
    project_id: Short | None = None
    expires_at: datetime | None = None


class ApiKeyRead(BaseModel):
    id: str
    name: str
    prefix: str
    role: Role
    project_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: ApiKeyInfo) -> ApiKeyRead:
        return cls(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            role=info.role,
            project_id=info.project_id,
            created_by=info.created_by,
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
        )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The API key. It is shown only in this response.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead]


@router.post("/auth/tokens", response_model=TokenRead, status_code=201)
def create_token(request: Request, state: State, body: TokenCreate) -> TokenRead:
    """A bearer token for Keystone credentials (valid until the configured lifetime or Keystone's expiry)."""
    # Password guessing is limited per client address (no principal exists yet).
    state.limiter.check(f"ip:{request.client.host if request.client else 'unknown'}")
    if body.method == "password":
        issued = state.auth.login(
            PasswordLogin(
                username=body.username or "",
                password=body.password or "",
                project_name=body.project_name,
                project_id=body.project_id,
                user_domain_name=body.user_domain_name,
                project_domain_name=body.project_domain_name,
            )
        )
    else:
        issued = state.auth.login(
            AppCredentialLogin(
                secret=body.application_credential_secret or "",
                credential_id=body.application_credential_id,
                name=body.application_credential_name,
                username=body.username,
                user_domain_name=body.user_domain_name,
            )
        )
    return TokenRead(
        token=issued.token, expires_at=issued.expires_at, principal=PrincipalRead.of(issued.principal)
    )


@router.get("/auth/whoami", response_model=PrincipalRead)
def whoami(principal: CurrentPrincipal) -> PrincipalRead:
    return PrincipalRead.of(principal)


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(state: State, principal: AdminPrincipal, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new API key for automation (admins). The key is in this response only; it is stored hashed."""
    created = state.auth.create_api_key(principal, body.name, body.role, body.project_id, body.expires_at)
    return ApiKeyCreated(**ApiKeyRead.of(created.info).model_dump(), key=created.key)


@router.get("/api-keys", response_model=ApiKeyList)
def list_api_keys(state: State, principal: AdminPrincipal) -> ApiKeyList:
    return ApiKeyList(items=[ApiKeyRead.of(i) for i in state.auth.list_api_keys(principal)])


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead)
def revoke_api_key(
    state: State, principal: AdminPrincipal, key_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> ApiKeyRead:
    """Revoke: requests with the key fail with 401 from now on, on every replica."""
    return ApiKeyRead.of(state.auth.revoke_api_key(principal, key_id))
