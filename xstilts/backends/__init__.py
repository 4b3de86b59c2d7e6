"""Backends that run rendered phase Jobs (`local`: subprocesses; `kubernetes`: the cluster), and the
reconcile loop both share."""
