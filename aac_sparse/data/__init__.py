"""Datasets: one registry of loaders, fetching, splits and preprocessing."""
