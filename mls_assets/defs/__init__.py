"""Dagster definitions, one module or folder per concept."""
