"""Automated algorithm configuration: scenario -> configurator -> executor -> target -> store.

This layer knows the engine only through the target function
``(config, instance, seed, budget, report) -> result`` in
:mod:`aac_sparse.target`.
"""
