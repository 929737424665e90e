"""Build the configured providers: OpenStack clouds, plugin types from entry points, the devcloud default."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path

from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.connect import CloudSources, clouds_yaml_names
from stackyard.cloud.images import ImageGateway
from stackyard.cloud.objects import ObjectStoreGateway
from stackyard.cloud.ports import PortGateway
from stackyard.cloud.settings import CloudSettings
from stackyard.config import Settings
from stackyard.devcloud.access import credentials
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, default_root
from stackyard.errors import ConfigError, NotFound, StackyardError, ValidationError
from stackyard.exports.service import CloudFor, CloudHandles
from stackyard.providers.base import ENTRY_POINT_GROUP, Provider
from stackyard.providers.openstack import TYPE as OPENSTACK
from stackyard.providers.openstack import CloudRuntime, OpenStackProvider

DEVCLOUD_PROVIDER = "devcloud"


def provider_types() -> dict[str, type]:
    """Provider types installed as plugins (entry point group `stackyard.providers`), by type name."""
    found: dict[str, type] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # noqa: BLE001 (a broken plugin must not take the service down)
            raise ConfigError(
                f"provider plugin {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from None
        if not isinstance(loaded, type):
            raise ConfigError(f"provider plugin {entry.name!r} ({entry.value}) is not a class")
        found[entry.name] = loaded
    return found


def devcloud_cloud_settings(root: Path | None = None) -> CloudSettings:
    """The local devcloud's admin credentials, as the embedded default's provider."""
    cloud = Devcloud(Layout(root or default_root()))
    creds = credentials(cloud, "admin")
    return CloudSettings.from_mapping(
        {
            "auth_url": creds.auth_url,
            "username": creds.username,
            "password": creds.password,
            "project_name": creds.project_name,
            "user_domain_name": creds.user_domain_name,
            "project_domain_name": creds.project_domain_name,
            "region_name": creds.region_name,
        },
        source="the local devcloud",
    )


def needs_devcloud(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """True when nothing names a provider, so the local devcloud is the one (the embedded default)."""
    if settings.openstack_provider is not None or settings.plugin_providers:
        return False
    clouds = settings.clouds if settings.clouds is not None else clouds_yaml_names(environ)
    return not clouds


def build_providers(
    settings: Settings,
    runtime: CloudRuntime,
    *,
    devcloud: CloudSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Provider]:
    """Every configured provider by name.

    OpenStack: the `providers.openstack` settings entry (named "openstack") and each clouds.yaml cloud
    (`providers.clouds`, default all of them). Plugins: `providers.plugins`. When none is configured,
    `devcloud` (if given) is the one provider, named "devcloud".
    """
    env = os.environ if environ is None else environ
    providers: dict[str, Provider] = {}

    def add(provider: Provider, field: str) -> None:
        if provider.name in providers:
            raise ValidationError(field, f"provider name {provider.name!r} is used twice")
        providers[provider.name] = provider

    if settings.openstack_provider is not None:
        explicit = CloudSettings.from_mapping(settings.openstack_provider, source=str(settings.config_file))
        add(
            OpenStackProvider(
                OPENSTACK,
                cloud=None,
                sources=CloudSources(explicit=explicit, environ={}, request_timeout=settings.request_timeout),
                runtime=runtime,
            ),
            "providers.openstack",
        )
    clouds = settings.clouds if settings.clouds is not None else tuple(clouds_yaml_names(env))
    for cloud in clouds:
        sources = CloudSources(environ=env, request_timeout=settings.request_timeout)
        add(OpenStackProvider(cloud, cloud=cloud, sources=sources, runtime=runtime), "providers.clouds")
    if settings.plugin_providers:
        types = provider_types()
        for index, entry in enumerate(settings.plugin_providers):
            field = f"providers.plugins[{index}]"
            kind = types.get(entry.type)
            if kind is None:
                known = ", ".join(sorted(types)) or "none installed"
                raise ValidationError(f"{field}.type", f"no provider type {entry.type!r}; installed: {known}")
            try:
                provider = kind(entry.name, dict(entry.options))
            except StackyardError:
                raise
            except Exception as exc:  # noqa: BLE001 (plugin constructors raise what they like)
                raise ConfigError(f"{field}: provider {entry.name!r} could not be built: {exc}") from None
            if not isinstance(provider, Provider):
                raise ConfigError(f"{field}: {entry.type!r} does not implement the provider protocol")
            add(provider, field)
    if not providers and devcloud is not None:
        sources = CloudSources(explicit=devcloud, environ={}, request_timeout=settings.request_timeout)
        add(OpenStackProvider(DEVCLOUD_PROVIDER, cloud=None, sources=sources, runtime=runtime), "devcloud")
    return providers


def identity_provider(settings: Settings, providers: Mapping[str, Provider]) -> OpenStackProvider:
    """The provider whose Keystone authenticates API callers: `api.keystone_cloud`, else the first."""
    wanted = settings.api.keystone_cloud
    if wanted is not None:
        chosen = providers.get(wanted)
        if not isinstance(chosen, OpenStackProvider):
            raise ConfigError(f"api.keystone_cloud: {wanted!r} is not a configured OpenStack provider")
        return chosen
    for name in sorted(providers):
        provider = providers[name]
        if isinstance(provider, OpenStackProvider):
            return provider
    raise ConfigError(
        "no OpenStack provider is configured, so there is no Keystone to authenticate API callers against"
    )


def _chosen_provider(
    setting: str, wanted: str | None, settings: Settings, providers: Mapping[str, Provider]
) -> OpenStackProvider:
    """The provider a `<section>.cloud` setting names, else the cloud that authenticates API callers."""
    chosen = providers.get(wanted) if wanted is not None else identity_provider(settings, providers)
    if not isinstance(chosen, OpenStackProvider):
        raise ConfigError(f"{setting}: {wanted!r} is not a configured OpenStack provider")
    return chosen


def quota_provider(settings: Settings, providers: Mapping[str, Provider]) -> OpenStackProvider:
    """Student projects live in `quotas.cloud` (default: the cloud that authenticates API callers)."""
    return _chosen_provider("quotas.cloud", settings.quotas.cloud, settings, providers)


def export_provider(settings: Settings, providers: Mapping[str, Provider]) -> OpenStackProvider:
    """Where exports run by default: `exports.cloud`, else the cloud that authenticates API callers."""
    return _chosen_provider("exports.cloud", settings.exports.cloud, settings, providers)


def export_cloud(providers: Mapping[str, Provider]) -> CloudFor:
    """Gateways for an export on (provider, region), with the provider's own credentials; one set per
    region, shared by the jobs that run there."""
    made: dict[tuple[str, str | None], CloudHandles] = {}
    lock = threading.Lock()

    def cloud_for(name: str, region: str | None) -> CloudHandles:
        provider = providers.get(name)
        if not isinstance(provider, OpenStackProvider):
            raise ValidationError("provider", f"{name!r} is not an OpenStack provider; exports need Glance")
        with lock:
            handles = made.get((name, region))
            if handles is None:
                session = provider.service_session(region)
                handles = CloudHandles(
                    ComputeGateway(session), ImageGateway(session), ObjectStoreGateway(session)
                )
                made[(name, region)] = handles
            return handles

    return cloud_for


def inventory_provider(settings: Settings, providers: Mapping[str, Provider]) -> OpenStackProvider:
    """Where inventory syncs run by default: `inventory.cloud`, else the cloud that authenticates callers."""
    return _chosen_provider("inventory.cloud", settings.inventory.cloud, settings, providers)


def inventory_ports(providers: Mapping[str, Provider]) -> Callable[[str], PortGateway]:
    """A port gateway per provider, with the provider's own credentials, made on first use."""
    made: dict[str, PortGateway] = {}
    lock = threading.Lock()

    def ports_for(name: str) -> PortGateway:
        provider = providers.get(name)
        if not isinstance(provider, OpenStackProvider):
            raise NotFound(f"no OpenStack provider named {name!r}; GET /api/v1/providers lists them")
        with lock:
            if name not in made:
                made[name] = PortGateway(provider.service_session())
            return made[name]

    return ports_for
