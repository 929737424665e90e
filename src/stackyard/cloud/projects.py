"""Keystone administration for student projects: find-or-create projects and users, grant roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from openstack.identity.v3._proxy import Proxy as IdentityProxy

from stackyard.cloud.session import CloudSession
from stackyard.errors import NotFound

__all__ = ["ProjectGateway", "ProjectRecord"]


@dataclass(frozen=True)
class ProjectRecord:
    id: str
    name: str
    domain_id: str
    is_enabled: bool
    created: bool  # made by this call


def _record(project: Any, *, created: bool) -> ProjectRecord:
    return ProjectRecord(
        id=str(project.id),
        name=str(project.name or ""),
        domain_id=str(project.domain_id or ""),
        is_enabled=bool(project.is_enabled),
        created=created,
    )


class ProjectGateway:
    """Needs an admin session; every operation is idempotent, so a retried job repeats it safely."""

    def __init__(self, session: CloudSession) -> None:
        self._session = session
        self._identity = cast(IdentityProxy, session.conn.identity)
        self._domains: dict[str, str] = {}

    def _domain_id(self, domain: str) -> str:
        if domain not in self._domains:
            found = self._session.call(
                "identity", "find domain", lambda: self._identity.find_domain(domain, ignore_missing=False)
            )
            self._domains[domain] = str(found.id)
        return self._domains[domain]

    def ensure_project(self, name: str, *, domain: str = "default", description: str = "") -> ProjectRecord:
        domain_id = self._domain_id(domain)

        def find() -> Any:
            return self._identity.find_project(name, domain_id=domain_id, ignore_missing=True)

        existing = self._session.call("identity", "find project", find)
        if existing is not None:
            return _record(existing, created=False)
        created = self._session.call(
            "identity",
            "create project",
            lambda: self._identity.create_project(name=name, domain_id=domain_id, description=description),
            idempotent=False,
            # A create whose answer was lost is looked up by its name (unique in the domain).
            find_existing=find,
        )
        return _record(created, created=True)

    def get_project(self, project_id: str) -> ProjectRecord:
        found = self._session.call(
            "identity", "get project", lambda: self._identity.find_project(project_id, ignore_missing=True)
        )
        if found is None:
            raise NotFound(f"no project {project_id!r} in Keystone", service="identity")
        return _record(found, created=False)

    def ensure_user(
        self,
        name: str,
        *,
        domain: str = "default",
        email: str | None = None,
        project_id: str,
        role: str = "member",
    ) -> str:
        """The user (created without a password: they sign in through the university's federation),
        with `role` on the project; returns the user id."""
        domain_id = self._domain_id(domain)

        def find() -> Any:
            return self._identity.find_user(name, domain_id=domain_id, ignore_missing=True)

        user = self._session.call("identity", "find user", find)
        if user is None:
            attributes: dict[str, object] = {"name": name, "domain_id": domain_id, "is_enabled": True}
            if email:
                attributes["email"] = email
            user = self._session.call(
                "identity",
                "create user",
                lambda: self._identity.create_user(**attributes),
                idempotent=False,
                find_existing=find,
            )
        found_role = self._session.call(
            "identity", "find role", lambda: self._identity.find_role(role, ignore_missing=False)
        )
        # Assigning a role someone already has is a no-op for Keystone (204 either way).
        self._session.call(
            "identity",
            "assign role",
            lambda: self._identity.assign_project_role_to_user(project_id, user.id, found_role.id),
        )
        return str(user.id)

    def set_project_enabled(self, project_id: str, enabled: bool) -> None:
        self._session.call(
            "identity",
            "update project",
            lambda: self._identity.update_project(project_id, is_enabled=enabled),
        )
