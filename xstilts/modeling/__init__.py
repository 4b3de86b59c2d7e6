"""Encoder + task heads (one per task, shared encoder), and the offline tiny encoder builder."""
