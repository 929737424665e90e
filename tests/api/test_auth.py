"""Authentication and authorization of every route, over HTTP: 401s, 403s, revocation, who am I, secrets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from stackyard.devcloud.access import Credentials
from support.api_client import Api, Credential, auth_headers, error_of

pytestmark = pytest.mark.devcloud

# The routes anyone may call: probes, metrics, the docs, the spec, and logging in.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("POST", "/api/v1/auth/tokens"),
}
METHODS = ("get", "put", "post", "delete", "patch")
ADMIN_ONLY = (
    ("PUT", "/api/v1/pricebook"),
    ("POST", "/api/v1/api-keys"),
    ("GET", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/00000000-0000-0000-0000-000000000000"),
)


def protected_operations(spec: dict[str, object]) -> list[tuple[str, str]]:
    """Every operation in the served spec but the public ones, path parameters filled with dummies."""
    paths = spec["paths"]
    assert isinstance(paths, dict)
    operations = []
    for template, item in paths.items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None or (method.upper(), template) in PUBLIC:
                continue
            path = template
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    dummy = "1" if parameter["schema"].get("type") == "integer" else "dummy-value"
                    path = path.replace("{" + parameter["name"] + "}", dummy)
            assert "{" not in path, (template, operation.get("parameters"))
            operations.append((method.upper(), path))
    return operations


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, object]:
    with api.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def anonymous(api: Api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def assert_unauthenticated(response: httpx.Response) -> None:
    error_of(response, 401, "unauthenticated")
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers


def assert_no_secret(response: httpx.Response, *secrets: str) -> None:
    shown = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in secrets:
        assert secret not in shown, f"a secret is in the response to {response.request.url}"


def test_every_protected_route_needs_credentials(spec: dict[str, object], anonymous: httpx.Client) -> None:
    operations = protected_operations(spec)
    # The spec is the source: a new route is covered without touching this test. Guard against an
    # empty or truncated spec making the loop vacuous.
    assert len(operations) >= 15, operations
    assert ("GET", "/api/v1/providers/dummy-value/instances") in operations
    for method, path in operations:
        response = anonymous.request(method, path)
        assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
        assert_unauthenticated(response)


def test_the_spec_documents_the_error_shape(spec: dict[str, object]) -> None:
    """Clients generated from the spec must expect `{"error": {...}}`, not FastAPI's `{"detail": [...]}`."""
    assert "HTTPValidationError" not in str(spec)
    paths = spec["paths"]
    assert isinstance(paths, dict)
    for template, item in paths.items():
        for method in METHODS:
            if method not in item or (method.upper(), template) in PUBLIC:
                continue
            for status in ("401", "403", "404", "422"):
                content = item[method]["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (
                    method,
                    template,
                    status,
                )


def test_every_protected_route_refuses_garbage_credentials(
    spec: dict[str, object], anonymous: httpx.Client
) -> None:
    for method, path in protected_operations(spec):
        response = anonymous.request(method, path, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
        assert_unauthenticated(response)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer sy_garbage"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"X-API-Key": "sy_0123abcd_" + "x" * 43},
        {"X-Auth-Token": "gAAAAABnot-a-keystone-token"},
    ],
    ids=["bearer", "bearer-apikey-shape", "unsigned-jwt", "basic", "x-api-key", "x-auth-token"],
)
def test_garbage_credentials_are_401(anonymous: httpx.Client, headers: dict[str, str]) -> None:
    response = anonymous.get("/api/v1/auth/whoami", headers=headers)
    assert_unauthenticated(response)
    assert_no_secret(response, *headers.values())


def test_two_kinds_of_credentials_at_once_are_401(
    api: Api, anonymous: httpx.Client, admin_token: str
) -> None:
    response = anonymous.get(
        "/api/v1/auth/whoami",
        headers={**auth_headers(Credential.BEARER, admin_token), "X-API-Key": api.admin_key},
    )
    assert_unauthenticated(response)


def test_revoked_api_key_is_401(api: Api, anonymous: httpx.Client) -> None:
    with api.as_admin() as admin:
        created = admin.post(
            "/api/v1/api-keys", json={"name": f"revoke-me-{uuid.uuid4().hex[:6]}", "role": "admin"}
        )
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
        assert re.fullmatch(r"sy_[0-9a-f]{8}_[A-Za-z0-9_\-]{43}", key)
        for headers in (auth_headers(Credential.BEARER, key), auth_headers(Credential.API_KEY, key)):
            used = anonymous.get("/api/v1/auth/whoami", headers=headers)
            assert used.status_code == 200, used.text
            assert used.json()["subject"] == f"apikey:{key_id}"
        revoked = admin.delete(f"/api/v1/api-keys/{key_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None
        assert_no_secret(revoked, key)
    # Several fresh connections, so both workers see the revoke (it is read from the database).
    for _ in range(6):
        with api.client(auth_headers(Credential.BEARER, key)) as client:
            assert_unauthenticated(client.get("/api/v1/auth/whoami"))
            assert_unauthenticated(client.get("/api/v1/providers"))


def test_member_is_forbidden_admin_routes(
    api: Api, demo_token: str, demo_keystone_token: str, member_api_key: str
) -> None:
    callers = {
        "bearer": auth_headers(Credential.BEARER, demo_token),
        "keystone": auth_headers(Credential.KEYSTONE, demo_keystone_token),
        "member key": auth_headers(Credential.API_KEY, member_api_key),
    }
    bodies = {
        "PUT": {"currency": "EUR", "regions": {"*": {"units": {"vcpu_hour": "0.01"}}}},
        "POST": {"name": "sneaky", "role": "admin"},
    }
    for who, headers in callers.items():
        with api.client(headers) as client:
            for method, path in ADMIN_ONLY:
                response = client.request(method, path, json=bodies.get(method))
                assert response.status_code == 403, f"{who}: {method} {path}: {response.text}"
                error_of(response, 403, "permission_denied")
    with api.as_admin() as admin:
        keys = admin.get("/api/v1/api-keys").json()["items"]
    assert "sneaky" not in {k["name"] for k in keys}


def test_wrong_password_is_401_and_never_echoed(api: Api, admin_credentials: Credentials) -> None:
    wrong = f"Wrong-Password-{uuid.uuid4().hex}"
    response = api.login(
        Credentials(
            auth_url=admin_credentials.auth_url,
            username=admin_credentials.username,
            password=wrong,
            project_name=admin_credentials.project_name,
        )
    )
    error_of(response, 401, "unauthenticated")
    assert_no_secret(response, wrong)


def test_token_login_validation_is_422_without_echoing_the_password(api: Api) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    with api.client() as client:
        response = client.post("/api/v1/auth/tokens", json={"username": "admin", "password": secret})
    error_of(response, 422, "validation_error")
    assert_no_secret(response, secret)


def test_member_with_a_keystone_token_works(api: Api, demo_keystone_token: str, demo_project_id: str) -> None:
    with api.client(auth_headers(Credential.KEYSTONE, demo_keystone_token)) as client:
        listed = client.get("/api/v1/providers/devcloud/instances")
        assert listed.status_code == 200, listed.text
        assert all(item["project_id"] == demo_project_id for item in listed.json()["items"])
        assert_no_secret(listed, demo_keystone_token)
        flavors = client.get("/api/v1/providers/devcloud/flavors")
        assert flavors.status_code == 200, flavors.text
        assert "m1.tiny" in {f["name"] for f in flavors.json()["items"]}


def test_whoami_for_each_method(
    api: Api,
    admin_token: str,
    demo_token: str,
    demo_keystone_token: str,
    member_api_key: str,
    admin_project_id: str,
    demo_project_id: str,
) -> None:
    expected = [
        (auth_headers(Credential.BEARER, api.admin_key), "admin", None, None, "api_key"),
        (auth_headers(Credential.API_KEY, api.admin_key), "admin", None, None, "api_key"),
        (auth_headers(Credential.BEARER, admin_token), "admin", admin_project_id, "admin", "bearer"),
        (auth_headers(Credential.BEARER, demo_token), "member", demo_project_id, "demo", "bearer"),
        (
            auth_headers(Credential.KEYSTONE, demo_keystone_token),
            "member",
            demo_project_id,
            "demo",
            "keystone_token",
        ),
        (auth_headers(Credential.API_KEY, member_api_key), "member", demo_project_id, None, "api_key"),
        (auth_headers(Credential.BEARER, member_api_key), "member", demo_project_id, None, "api_key"),
    ]
    secrets = (api.admin_key, admin_token, demo_token, demo_keystone_token, member_api_key)
    for headers, role, project_id, project_name, method in expected:
        with api.client(headers) as client:
            response = client.get("/api/v1/auth/whoami")
        assert response.status_code == 200, response.text
        shown = response.json()
        assert (shown["role"], shown["project_id"], shown["project_name"], shown["method"]) == (
            role,
            project_id,
            project_name,
            method,
        ), shown
        assert_no_secret(response, *secrets)


def test_token_response_is_the_only_place_a_token_appears(api: Api, demo_credentials: Credentials) -> None:
    issued = api.login(demo_credentials)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["principal"]["role"] == "member"
    assert demo_credentials.password not in issued.text
    token = body["token"]
    with api.client(auth_headers(Credential.BEARER, token)) as client:
        for path in ("/api/v1/auth/whoami", "/api/v1/providers", "/api/v1/providers/devcloud/instances"):
            response = client.get(path)
            assert response.status_code == 200, response.text
            assert_no_secret(response, token)


def test_api_keys_are_shown_once(api: Api, member_api_key: str) -> None:
    with api.as_admin() as admin:
        created = admin.post("/api/v1/api-keys", json={"name": "shown-once", "role": "admin"})
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        listed = admin.get("/api/v1/api-keys")
        assert listed.status_code == 200, listed.text
        assert created.json()["id"] in {k["id"] for k in listed.json()["items"]}
        assert_no_secret(listed, key, member_api_key, api.admin_key)
        assert all("key" not in k for k in listed.json()["items"])
        assert admin.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 200


def test_member_key_needs_a_project(api: Api) -> None:
    with api.as_admin() as admin:
        response = admin.post("/api/v1/api-keys", json={"name": "projectless", "role": "member"})
    error = error_of(response, 422, "validation_error")
    assert error["details"] == {"field": "project_id"}, error


def test_unknown_api_key_id_is_404(api: Api) -> None:
    with api.as_admin() as admin:
        error_of(admin.delete(f"/api/v1/api-keys/{uuid.uuid4()}"), 404, "not_found")
