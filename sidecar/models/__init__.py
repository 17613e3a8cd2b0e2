"""Detectors. Nothing here imports the cluster client."""
