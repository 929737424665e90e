"""The web dashboard at /ui: server-rendered pages over the same services and auth as the REST API."""

from stackyard.web.app import create_app_from_environment, install_ui

__all__ = ["create_app_from_environment", "install_ui"]
