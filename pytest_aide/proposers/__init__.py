"""Proposers: where candidates come from (the offline tuner, or an LLM)."""
