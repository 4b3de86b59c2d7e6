"""Helm chart, kustomize base and container image checks (offline)."""
