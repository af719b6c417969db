"""The truly sparse training engine: layers, kernels, topology evolution, optimizer, trainer.

It knows nothing about tuning; the tuning layer reaches it only through the target function.
"""
