"""Build gateways and services for a CLI command from --cloud/--region (entry-point wiring only)."""

from __future__ import annotations

from stackyard.cli.common import CommandContext
from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.connect import CloudTarget, connect
from stackyard.cloud.session import open_session
from stackyard.compute.service import InstanceService


def compute_gateway(ctx: CommandContext) -> ComputeGateway:
    target = CloudTarget(cloud=ctx.cloud, region=ctx.region)
    session = open_session(connect(target), name=ctx.cloud or "default")
    return ComputeGateway(session)


def instance_service(ctx: CommandContext) -> InstanceService:
    return InstanceService(compute_gateway(ctx))
