"""Phase -> Kubernetes objects (built with the kubernetes client's models), then YAML."""
