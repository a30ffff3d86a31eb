"""Baselines the paper compares against (a feature-based CRF)."""
