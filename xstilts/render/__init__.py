"""Phase -> Kubernetes objects (built with the kubernetes client's models), then YAML.

Modules: `settings` (cluster settings), `names`, `job` (the one Job renderer), `dump` (objects -> YAML).
"""
