"""Data-parallel truly sparse training over MPI: WASSP-SGD and WASAP-SGD (seed 004)."""

from .api import train_parallel
from .config import STRATEGIES, ParallelConfig
from .runtime import NotRootRank, ParallelRunError, ParallelUnavailable, under_mpiexec

__all__ = ["STRATEGIES", "NotRootRank", "ParallelConfig", "ParallelRunError",
           "ParallelUnavailable", "train_parallel", "under_mpiexec"]
