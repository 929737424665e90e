"""Placeholder."""

from fastapi import APIRouter

from stackyard.web.render import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)
