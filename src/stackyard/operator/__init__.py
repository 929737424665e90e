"""The Kubernetes operator: OpenstackConfig custom resources drive inventory syncs."""
