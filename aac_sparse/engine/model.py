"""A multilayer perceptron of sparse (and, where density reaches 1, dense) layers.

The model owns its layers, hidden activations and dropout; it computes a forward pass,
softmax cross-entropy, all gradients and the SGD step.  Inputs are given batch-major
``(batch, n_features)`` and converted once per batch to the neuron-major layout the
kernels want.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .activations import LeakyFamily, SReLU, make_activation
from .densities import layer_nnz
from .layers import SparseLayer


@dataclass
class GradientSignals:
    """One mini-batch's layer input ``x (n_in, batch)`` and output gradient ``dz
    (n_out, batch)``: enough to compute the gradient at any position of the layer (what
    gradient regrowth scores absent positions by)."""

    x: np.ndarray
    dz: np.ndarray


def to_neuron_major(x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Samples ``rows`` of batch-major ``x`` (all if None) as contiguous ``(n, batch)``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if rows is None:
        rows = np.arange(x.shape[0])
    out = np.empty((x.shape[1], rows.shape[0]), dtype=np.float32)
    K.gather_transpose(x, np.ascontiguousarray(rows, dtype=np.int64), out)
    return out


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean cross-entropy of neuron-major ``logits``, its gradient and #correct."""
    grad = np.empty_like(logits)
    loss, correct = K.softmax_xent(logits, np.ascontiguousarray(y, dtype=np.int64), grad)
    return float(loss), grad, int(correct)


DEFAULT_ACTIVATION_MEMORY = 4 * 2**30  # bytes of activations one micro-batch may use


class SparseMLP:
    """MLP ``sizes[0] -> ... -> sizes[-1]``; hidden layers use ``activation``.

    A mini-batch whose activations would take more than ``activation_memory`` bytes is
    processed in micro-batches (gradients accumulated, one optimizer step), so a wide
    network trains with the batch size asked for in bounded memory."""

    def __init__(
        self,
        layers: Sequence[SparseLayer],
        activations: Sequence[LeakyFamily | SReLU],
        dropout: float = 0.0,
        activation_memory: int = DEFAULT_ACTIVATION_MEMORY,
    ) -> None:
        if len(activations) != len(layers) - 1:
            raise ValueError("need one activation per hidden layer")
        self.layers = list(layers)
        self.activations = list(activations)
        self.dropout = float(dropout)
        self.activation_memory = int(activation_memory)
        self.neuron_ids = [np.arange(layer.n_out) for layer in self.layers[:-1]]
        self._flat: dict[tuple[str, int], np.ndarray] = {}
        self._cache: dict[str, list[np.ndarray]] = {}

    @classmethod
    def build(
        cls,
        sizes: Sequence[int],
        densities: Sequence[float],
        rng: np.random.Generator,
        activation: str = "relu",
        alpha: float = 0.6,
        weight_init: str = "he_uniform",
        dropout: float = 0.0,
        activation_memory: int = DEFAULT_ACTIVATION_MEMORY,
    ) -> SparseMLP:
        """Random sparse network; a layer of density 1 is built dense."""
        layers: list[SparseLayer] = []
        for n_in, n_out, d in zip(sizes[:-1], sizes[1:], densities, strict=True):
            if d >= 1.0:
                layers.append(SparseLayer.full(rng, n_in, n_out, weight_init))
            else:
                layers.append(
                    SparseLayer.random(rng, n_in, n_out, layer_nnz(d, n_in, n_out), weight_init)
                )
        acts = [
            make_activation(activation, h + 1, sizes[h + 1], alpha)
            for h in range(len(sizes) - 2)
        ]
        return cls(layers, acts, dropout, activation_memory)

    # -- shape -----------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)

    @property
    def n_params(self) -> int:
        extra = sum(4 * len(a.params["t_l"]) for a in self.activations if a.has_params)
        return sum(layer.n_params for layer in self.layers) + extra

    def flops_per_sample(self, training: bool = True) -> int:
        """Useful multiply-adds x2 per sample: forward, and for training both gradients."""
        fwd = sum(2 * layer.nnz for layer in self.layers)
        if not training:
            return fwd
        backward = sum(2 * layer.nnz for layer in self.layers[1:])  # no input gradient
        return fwd + backward + fwd  # + weight gradients

    # -- buffers ---------------------------------------------------------------------
    def _keeps_z(self, hidden: int) -> bool:
        """Whether hidden layer ``hidden`` stores its pre-activation: SReLU and negative
        slopes need it backward; a sign-preserving leaky layer takes the sign from ``a``."""
        act = self.activations[hidden]
        return act.has_params or not act.sign_preserving

    def _roles(self) -> dict[str, list[int]]:
        """Rows of every workspace array per layer (0: not kept): ``z`` of the output layer
        and where :meth:`_keeps_z`, ``a`` and ``dz`` of the hidden layers, SReLU's ``da``."""
        outs = [layer.n_out for layer in self.layers]
        return {"z": [n if li == len(outs) - 1 or self._keeps_z(li) else 0
                      for li, n in enumerate(outs)],
                "a": outs[:-1], "dz": outs[:-1],
                "da": [n if act.has_params else 0
                       for n, act in zip(outs[:-1], self.activations, strict=True)]}

    def bytes_per_sample(self) -> int:
        """Activation memory one training sample needs: the workspace's rows and the
        neuron-major input, float32."""
        return 4 * (self.layers[0].n_in + sum(sum(rows) for rows in self._roles().values()))

    def micro_batch(self, batch: int) -> int:
        """Samples per micro-batch for a mini-batch of ``batch``: all of them if their
        activations fit ``activation_memory``, else equal parts that do (a multiple of 8
        where that still fits, for whole cache lines per row)."""
        cap = max(1, self.activation_memory // self.bytes_per_sample())
        if batch <= cap:
            return batch
        parts = -(-batch // cap)
        m = -(-batch // parts)
        rounded = -(-m // 8) * 8
        return rounded if rounded <= cap else m

    def _buffers(self, batch: int) -> dict[str, list[np.ndarray]]:
        """Workspace for ``batch`` columns: contiguous views into one flat buffer per array,
        grown to the largest batch seen, so the full and the last partial (micro-)batch
        and evaluation share memory."""
        ws: dict[str, list[np.ndarray]] = {}
        for role, sizes in self._roles().items():
            views = []
            for li, n in enumerate(sizes):
                flat = self._flat.get((role, li))
                if flat is None or flat.shape[0] < n * batch:
                    flat = self._flat[(role, li)] = np.empty(n * batch, np.float32)
                views.append(flat[: n * batch].reshape(n, batch))
            ws[role] = views
        return ws

    def _invalidate(self) -> None:
        self._flat = {}
        self._cache = {}

    # -- passes ----------------------------------------------------------------------
    def forward(
        self,
        x_t: np.ndarray,
        train: bool = False,
        rng: np.random.Generator | None = None,
        dropout_seeds: Sequence[int] | None = None,
        cols: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Logits ``(n_classes, batch)`` for neuron-major input ``x_t``.

        With ``train`` and a dropout rate, hidden activations get inverted dropout; the
        per-layer mask seeds come from ``rng`` (or ``dropout_seeds``) and are kept so
        :meth:`backward` re-applies the same masks.  ``cols = (col0, stride)``: ``x_t`` is
        the micro-batch of columns ``col0 ..`` of a mini-batch of ``stride`` samples, and
        gets its part of that mini-batch's masks.
        """
        batch = x_t.shape[1]
        cols = cols or (0, batch)
        ws = self._buffers(batch)
        rate = self.dropout if train else 0.0
        seeds = [0] * len(self.activations)
        if rate > 0:
            if dropout_seeds is None:
                assert rng is not None, "dropout needs an rng"
                dropout_seeds = rng.integers(0, 2**62, len(self.activations))
            seeds = [int(s) for s in dropout_seeds]
        inputs = [x_t]
        for li, layer in enumerate(self.layers):
            z = ws["z"][li]
            if li == len(self.layers) - 1:
                layer.forward(inputs[-1], z)
                break
            act, a = self.activations[li], ws["a"][li]
            if act.has_params:
                layer.forward(inputs[-1], z)
                act.forward(z, a)
                if rate > 0:
                    K.dropout_inplace(a, rate, seeds[li], *cols)
            else:
                layer.forward(inputs[-1], z, a, act.slope, rate, seeds[li], cols)
            inputs.append(a)
        self._cache = {"inputs": inputs, "seeds": seeds, "rate": rate, "cols": cols}
        return ws["z"][-1]

    def backward(self, dlogits: np.ndarray, accumulate: bool = False) -> None:
        """Gradients of every layer (and SReLU) from ``dL/dlogits`` of the last forward;
        with ``accumulate`` added to the stored ones (the next micro-batch)."""
        ws = self._buffers(dlogits.shape[1])
        c = self._cache
        inputs, seeds, rate, cols = c["inputs"], c["seeds"], c["rate"], c["cols"]
        dz = dlogits
        known = False  # whether this layer's bias gradient came with its dz
        for li in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[li]
            if li == 0:
                layer.backward(inputs[0], dz, accumulate=accumulate, bias_known=known)
                break
            act, dz_prev, z_prev = self.activations[li - 1], ws["dz"][li - 1], ws["z"][li - 1]
            if act.has_params:
                da = ws["da"][li - 1]
                layer.backward(inputs[li], dz, da, accumulate=accumulate, bias_known=known)
                known = False
                if rate > 0:
                    K.dropout_inplace(da, rate, seeds[li - 1], *cols)
                act.backward(z_prev, da, dz_prev, accumulate)
            else:  # without a stored z, the sign comes from this layer's input a
                sign = z_prev if z_prev.shape[0] else inputs[li]
                layer.backward(inputs[li], dz, dz_prev, sign, act.slope, rate, seeds[li - 1],
                               cols, accumulate, self.layers[li - 1].grad_bias, known)
                known = True
            dz = dz_prev

    def step(self, lr: float, momentum: float, weight_decay: float) -> None:
        """One SGD-with-momentum update of all parameters from the stored gradients."""
        for layer in self.layers:
            layer.apply_update(lr, momentum, weight_decay)
        for act in self.activations:
            if act.has_params:
                act.apply_update(lr, momentum)

    def train_batch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        rows: np.ndarray,
        lr: float,
        momentum: float,
        weight_decay: float,
        rng: np.random.Generator,
    ) -> tuple[float, int]:
        """Forward, backward and update on samples ``rows`` of ``x``, ``y``.

        ``x`` must be C-contiguous float32 (the trainer converts once).  Returns the mean
        loss and the number of correct predictions; nothing is updated if the loss is
        not finite.
        """
        loss, correct = self.compute_gradients(x, y, rows, rng)
        if np.isfinite(loss):
            self.step(lr, momentum, weight_decay)
        return loss, correct

    def compute_gradients(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray,
                          rng: np.random.Generator) -> tuple[float, int]:
        """Forward and backward on samples ``rows``: the mean loss's gradients land in the
        layers' ``grad`` arrays (not if the loss is not finite); returns (loss, #correct).

        A mini-batch larger than :meth:`micro_batch` goes through in micro-batches, each
        one's gradient weighted by its share of the samples and added up: the gradient of
        the whole mini-batch's mean loss (same dropout masks, same random draws), up to the
        order of the float32 sums."""
        batch = rows.shape[0]
        m = self.micro_batch(batch)
        seeds = None  # one set of mask seeds for the whole mini-batch
        if self.dropout > 0:
            seeds = rng.integers(0, 2**62, len(self.activations))
        total, n_correct = 0.0, 0
        for start in range(0, batch, m):
            part = rows[start:start + m]
            logits = self.forward(to_neuron_major(x, part), train=True, dropout_seeds=seeds,
                                  cols=(start, batch))
            loss, grad, correct = softmax_cross_entropy(logits, y[part])
            n_correct += correct
            if not np.isfinite(loss):
                return loss, n_correct
            if m < batch:
                grad *= np.float32(part.shape[0] / batch)
            self.backward(grad, accumulate=start > 0)
            total += loss * part.shape[0]
        return (total / batch if m < batch else loss), n_correct

    def _aligned(self, layer_attrs: tuple[str, str], act_attr: str) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for layer in self.layers:
            out += [getattr(layer, a) for a in layer_attrs]
        for act in self.activations:
            if act.has_params:
                out += [getattr(act, act_attr)[k] for k in act.names]
        return out

    def gradient_arrays(self) -> list[np.ndarray]:
        """Every gradient, aligned with the structure (O(nnz)): what data-parallel
        workers reduce or send."""
        return self._aligned(("grad", "grad_bias"), "grads")

    def parameter_arrays(self) -> list[np.ndarray]:
        """Every trained parameter (weights, biases, SReLU's), aligned with the structure."""
        return self._aligned(("w", "bias"), "params")

    def gradient_signals(
        self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> list[GradientSignals]:
        """Per layer, the input and output gradient of one training-mode mini-batch.

        Gradient regrowth scores absent positions from these (RigL); no parameter is
        updated.  Returned arrays are copies: the model's buffers are reused by the next
        batch.
        """
        logits = self.forward(to_neuron_major(x, rows), train=True, rng=rng)
        _, dlogits, _ = softmax_cross_entropy(logits, y[rows])
        self.backward(dlogits)
        ws = self._buffers(rows.shape[0])
        inputs = self._cache["inputs"]
        dzs = [*ws["dz"], dlogits]
        return [GradientSignals(np.array(inputs[li]), np.array(dzs[li]))
                for li in range(len(self.layers))]

    def predict_logits(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Logits ``(n_samples, n_classes)`` in batches (no larger than a training
        micro-batch, so evaluation fits the same memory); the last partial batch included."""
        batch_size = self.micro_batch(batch_size)
        out = np.empty((x.shape[0], self.layers[-1].n_out), dtype=np.float32)
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            out[start:stop] = self.forward(to_neuron_major(x[start:stop])).T
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) over all samples."""
        if x.shape[0] == 0:
            return float("nan"), float("nan")
        logits = np.ascontiguousarray(self.predict_logits(x, batch_size).T)
        loss, _, correct = softmax_cross_entropy(logits, y)
        return loss, correct / x.shape[0]

    # -- neuron removal --------------------------------------------------------------
    def remove_hidden_neurons(self, hidden: int, keep: np.ndarray) -> int:
        """Remove neurons of hidden layer ``hidden`` (0-based) not in ``keep``.

        The incoming layer loses those outputs, the outgoing layer those inputs, and the
        activation its per-neuron parameters; returns how many neurons went.
        """
        removed = int((~keep).sum())
        if removed == 0:
            return 0
        self.layers[hidden].keep_outputs(keep)
        self.layers[hidden + 1].keep_inputs(keep)
        self.activations[hidden].keep(keep)
        self.neuron_ids[hidden] = self.neuron_ids[hidden][keep]
        self._invalidate()
        return removed

    def after_structure_change(self) -> None:
        """Drop cached per-batch state that depends on the structure."""
        self._cache = {}


def dropout_mask(n: int, batch: int, rate: float, seed: int) -> np.ndarray:
    """The ``(n, batch)`` inverted-dropout mask the kernels use for ``seed`` (tests, analysis)."""
    mask = np.ones((n, batch), dtype=np.float32)
    K.dropout_inplace(mask, rate, seed, 0, batch)
    return mask


def model_arrays(model: SparseMLP, momentum: bool = False) -> dict[str, np.ndarray]:
    """The model as named arrays (O(nnz)); with ``momentum`` also the optimizer state, so
    another process can continue training it exactly (:func:`model_from_arrays`)."""
    arrays: dict[str, np.ndarray] = {
        "sizes": np.array(model.sizes, dtype=np.int64),
        "dropout": np.array(model.dropout),
        "activation_memory": np.array(model.activation_memory, dtype=np.int64),
    }
    for li, layer in enumerate(model.layers):
        arrays[f"layer{li}_indptr"] = layer.indptr
        arrays[f"layer{li}_indices"] = layer.indices
        arrays[f"layer{li}_w"] = layer.w
        arrays[f"layer{li}_bias"] = layer.bias
        arrays[f"layer{li}_dense"] = np.array(layer.dense)
        if momentum:
            arrays[f"layer{li}_v"] = layer.v
            arrays[f"layer{li}_v_bias"] = layer.v_bias
    for h, act in enumerate(model.activations):
        if act.has_params:
            for k in act.names:
                arrays[f"act{h}_{k}"] = act.params[k]
                if momentum:
                    arrays[f"act{h}_{k}_mom"] = act.moms[k]
        else:
            arrays[f"act{h}_slope"] = np.array(act.slope, dtype=np.float64)
        arrays[f"hidden{h}_neuron_ids"] = model.neuron_ids[h]
    return arrays


def model_from_arrays(arrays) -> SparseMLP:
    """Rebuild a model from :func:`model_arrays` (or a loaded npz of them); the optimizer
    state too where it is there."""
    sizes = [int(s) for s in arrays["sizes"]]
    layers = []
    for li, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        indptr, indices = arrays[f"layer{li}_indptr"], arrays[f"layer{li}_indices"]
        keys = K.csr_to_keys(indptr, indices, n_in)
        layer = SparseLayer(n_in, n_out, keys, np.array(arrays[f"layer{li}_w"]),
                            bool(arrays[f"layer{li}_dense"]))
        layer.bias[:] = arrays[f"layer{li}_bias"]
        if f"layer{li}_v" in arrays:
            layer.v[:] = arrays[f"layer{li}_v"]
            layer.v_bias[:] = arrays[f"layer{li}_v_bias"]
        layers.append(layer)
    acts: list[LeakyFamily | SReLU] = []
    for h in range(len(sizes) - 2):
        if f"act{h}_slope" in arrays:
            acts.append(LeakyFamily(float(arrays[f"act{h}_slope"])))
        else:
            act = SReLU(sizes[h + 1])
            for k in act.names:
                act.params[k][:] = arrays[f"act{h}_{k}"]
                if f"act{h}_{k}_mom" in arrays:
                    act.moms[k][:] = arrays[f"act{h}_{k}_mom"]
            acts.append(act)
    memory = (int(arrays["activation_memory"]) if "activation_memory" in arrays
              else DEFAULT_ACTIVATION_MEMORY)
    model = SparseMLP(layers, acts, float(arrays["dropout"]), memory)
    model.neuron_ids = [np.array(arrays[f"hidden{h}_neuron_ids"]) for h in range(len(acts))]
    return model


def save_model(model: SparseMLP, write_npz) -> None:
    """Write the model's arrays with ``write_npz(**arrays)`` (e.g. an atomic npz writer)."""
    write_npz(**model_arrays(model))


def load_model(npz) -> SparseMLP:
    """Rebuild a model saved by :func:`save_model` from a loaded npz mapping."""
    return model_from_arrays(npz)
