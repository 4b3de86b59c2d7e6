"""Suggest intermediate tasks for a target: task embeddings, features, a regression on past results."""
