"""xstilts: STILTs / X-STILTs intermediate-task training and zero-shot transfer sweeps on Kubernetes."""

__version__ = "0.1.0"
