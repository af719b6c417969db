"""The one registry of the meta-algorithm's components: kind -> name -> meaning.

The trainer composes these by name from a flat :class:`~aac_sparse.engine.config.
TrainConfig`; the modules that implement a kind dispatch on exactly these names (a test
checks that the implementations, the configuration and the search spaces all agree).
"""

from __future__ import annotations

COMPONENTS: dict[str, dict[str, str]] = {
    "prune": {
        "set": "remove the floor(zeta*n) smallest non-negative and largest negative weights, "
               "per sign (SET)",
        "magnitude": "remove the floor(zeta*n) weights of smallest |w| (RigL)",
    },
    "regrow": {
        "random": "uniform over the positions absent after pruning (SET)",
        "gradient": "absent positions of largest |dL/dw|, exact block-wise top-k (RigL)",
        "gradient_sampled": "top-k of sampled absent positions by |dL/dw| (huge layers)",
    },
    "regrow_init": {
        "random": "new weights drawn like the initial weights",
        "zero": "new weights start at zero (RigL)",
    },
    "update_schedule": {
        "epoch": "topology updates after every k epochs (SET)",
        "steps": "topology updates after every delta-T optimizer steps (RigL)",
    },
    "zeta_decay": {
        "constant": "the same drop fraction at every update (SET)",
        "cosine": "drop fraction decays as a half cosine to 0 at t_end (RigL)",
        "linear": "drop fraction decays linearly to 0 at t_end",
    },
    "density_distribution": {
        "er": "Erdos-Renyi: epsilon * (n_in + n_out) / (n_in * n_out) per layer (SET)",
        "erk": "Erdos-Renyi-Kernel scaled to an overall density (RigL)",
        "uniform": "the same density in every layer",
    },
    "weight_init": {
        "he_uniform": "U(+-sqrt(6 / n_in))",
        "xavier": "U(+-sqrt(6 / (n_in + n_out)))",
        "normal": "N(0, 0.1^2)",
    },
    "activation": {
        "relu": "max(0, z)",
        "leaky_relu": "z, or alpha * z below zero",
        "all_relu": "leaky with slope +alpha on odd and -alpha on even hidden layers",
        "srelu": "S-shaped ReLU with four learnable parameters per neuron",
    },
    "lr_schedule": {
        "constant": "the same learning rate throughout",
        "cosine": "half-cosine decay to lr_final_fraction * lr",
        "linear": "linear decay to lr_final_fraction * lr",
        "step": "multiply by lr_gamma every lr_step_every epochs",
    },
}


def names(kind: str) -> tuple[str, ...]:
    """The registered names of one kind of component, in registry order."""
    return tuple(COMPONENTS[kind])
