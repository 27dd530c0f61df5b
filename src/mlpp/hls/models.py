"""The models that ``hls/configs/*.yml`` deploy, reproducible from the repository: the deployment recipes.

Every model is trained, seeded, on the ``jets5`` thread (:mod:`mlpp.tasks.jets5`: the 16 features,
the 60/20/20 split, standardised with the training jets):

- :func:`build_mlp`, :func:`fit_keras_classifier`: the float 64-32-32-5 tagger of Lecture 1 (softmax output);
- :func:`magnitude_masks`, :func:`apply_masks`, :func:`sparsity_of`: mask arithmetic for pruning;
- :func:`prune_by_magnitude`: the recipe's pruning schedule (mask, then fine-tune with the zeros held);
- :func:`build_hgq_mlp`, :func:`hgq_from`: the tagger with HGQ2 quantisers, started from the pruned one;
  :func:`train_hgq`: the recipe's quantisation-aware training;
- :func:`vae_networks`: encoder and decoder of a small VAE; :func:`build_vae`, :func:`fit_vae`: the
  recipe's VAE, trained on quark and gluon jets, whose encoder alone goes on the FPGA with the score
  :func:`latent_score` ``R_z = sum(mu**2 / sigma**2)``.

Lecture 11 teaches the pruning schedule, the HGQ2 training loop and the VAE loss, so it writes them
itself and uses only the architectures and the mask arithmetic from here; the recipes below are
what ``mlpp hls convert`` (and exercise 11's setup) run without a notebook.

The ``SOURCES`` (``jets5_mlp_float``, ``jets5_mlp_ptq``, ``jets5_mlp_hgq``, ``vae_encoder``) are what a
configuration's ``model.source`` names: each returns a :class:`Deployable`, training the model on
first use and afterwards reading its weights from ``mlpp.settings.cache_dir()/hls/`` (written
atomically, sha256-checked like the datasets). Keras, TensorFlow and HGQ2 are imported inside the
functions that need them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mlpp import metrics, settings
from mlpp.hls.jsonable import jsonable
from mlpp.tasks import jets5

CACHE_VERSION = 1  # bump when a recipe below changes, so that old cached weights are not reused


def qcd_only(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, f) whose label is a gluon or quark jet: the VAE's training sample."""
    return x[np.isin(y, jets5.QCD_CLASSES)]


# ----------------------------------------------------------------------------- the float tagger
def build_mlp(hidden: tuple[int, ...] = (64, 32, 32), n_inputs: int = 16, n_classes: int = 5,
              l1: float = 1e-4, name: str = "jet_mlp"):
    """Lecture 1's tagger: Dense+ReLU layers ``fc1..``, a softmax layer ``output``, L1 on the kernels."""
    import keras

    penalty = keras.regularizers.l1(l1) if l1 else None
    layers = [keras.Input((n_inputs,), name="features")]
    for i, width in enumerate(hidden):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_regularizer=penalty, name=f"fc{i + 1}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=penalty, name="output"))
    return keras.Sequential(layers, name=name)


def fit_keras_classifier(model, arrays: jets5.Arrays, epochs: int, learning_rate: float = 3e-3, patience: int = 10,
                         callbacks: tuple = (), from_logits: bool = False) -> dict:
    """Adam, sparse categorical cross-entropy, early stopping on the validation loss; returns the history."""
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(arrays.x_train, arrays.y_train, validation_data=(arrays.x_val, arrays.y_val),
                        epochs=epochs, batch_size=256, callbacks=[stop, *callbacks], verbose=0)
    return history.history


def model_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose largest output is the true label (a direct call: no tf.function to retrace).

    Works on every Keras backend (Lecture 10 runs Keras on PyTorch)."""
    from keras import ops

    outputs = np.concatenate([ops.convert_to_numpy(model(x[i:i + 8192], training=False))
                              for i in range(0, len(x), 8192)])
    return metrics.accuracy(y, outputs)


# ----------------------------------------------------------------------------- pruning
def magnitude_masks(model, sparsity: float) -> dict[str, np.ndarray]:
    """For each Dense kernel, a 0/1 mask that removes its ``sparsity`` fraction of smallest |w|.

    Returns ``{layer name: mask}`` with the kernel's shape (n_in, n_out); biases are never pruned.
    """
    masks = {}
    for layer in model.layers:
        if not hasattr(layer, "kernel"):
            continue
        kernel = np.asarray(layer.kernel)
        n_zero = int(round(sparsity * kernel.size))
        order = np.argsort(np.abs(kernel), axis=None, kind="stable")
        mask = np.ones(kernel.size, dtype=np.float32)
        mask[order[:n_zero]] = 0.0
        masks[layer.name] = mask.reshape(kernel.shape)
    return masks


def apply_masks(model, masks: dict[str, np.ndarray]) -> None:
    """Multiply each masked kernel of ``model`` by its mask (changes the model's weights)."""
    for layer in model.layers:
        if layer.name in masks:
            layer.kernel.assign(np.asarray(layer.kernel) * masks[layer.name])


def _keep_pruned_class():
    import keras

    class KeepPruned(keras.callbacks.Callback):
        """Re-applies the pruning masks after every training step, so pruned weights stay zero."""

        def __init__(self, masks: dict[str, np.ndarray]) -> None:
            super().__init__()
            self.masks = masks

        def on_train_batch_end(self, batch, logs=None) -> None:
            apply_masks(self.model, self.masks)

    return KeepPruned


def prune_by_magnitude(model, sparsity: float, arrays: jets5.Arrays, epochs: int, learning_rate: float = 1e-3):
    """Zero the smallest ``sparsity`` of each kernel, then fine-tune with the zeros held fixed.

    ``model`` is changed in place (and returned with its masks): ``(model, masks)``.
    """
    masks = magnitude_masks(model, sparsity)
    apply_masks(model, masks)
    if epochs > 0:
        fit_keras_classifier(model, arrays, epochs, learning_rate=learning_rate, patience=epochs,
                       callbacks=(_keep_pruned_class()(masks),))
        apply_masks(model, masks)
    return model, masks


def sparsity_of(model) -> float:
    """Fraction of exactly-zero weights in the Dense kernels of ``model``."""
    kernels = [np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]
    return float(sum((k == 0).sum() for k in kernels) / sum(k.size for k in kernels))


# ----------------------------------------------------------------------------- HGQ2
def build_hgq_mlp(hidden: tuple[int, ...] = (64, 32, 32), n_inputs: int = 16, n_classes: int = 5,
                  beta0: float = 1e-6, weight_bits0: int = 6, name: str = "jet_mlp_hgq"):
    """The tagger with HGQ2 ``QDense`` layers: every weight and every input of a layer learns its
    own number of bits (weights: KBI parametrisation, ``weight_bits0`` bits to start, saturating;
    activations: KIF, wrapping, integer bits calibrated on data). The output is the logits (no
    softmax: the class with the largest logit is the same)."""
    import keras
    from hgq.config import LayerConfigScope, QuantizerConfigScope
    from hgq.layers import QDense

    with QuantizerConfigScope(place="all", default_q_type="kbi", overflow_mode="SAT_SYM"), \
            QuantizerConfigScope(place="weight", default_q_type="kbi", overflow_mode="SAT_SYM", b0=weight_bits0), \
            QuantizerConfigScope(place="datalane", default_q_type="kif", overflow_mode="WRAP"), \
            LayerConfigScope(enable_ebops=True, beta0=beta0):
        layers = [keras.Input((n_inputs,), name="features")]
        for i, width in enumerate(hidden):
            layers.append(QDense(width, activation="relu", name=f"fc{i + 1}"))
        layers.append(QDense(n_classes, name="output"))
        return keras.Sequential(layers, name=name)


def hgq_from(model, weight_bits0: int = 6):
    """An HGQ2 tagger that starts from ``model``'s weights (a float or pruned Keras tagger).

    Pruned (zero) weights start with 0 bits, so they stay removed unless training needs them.
    """
    hgq_model = build_hgq_mlp(hidden=tuple(layer.units for layer in model.layers[:-1]),
                              n_inputs=model.input_shape[-1], n_classes=model.layers[-1].units,
                              weight_bits0=weight_bits0)
    hgq_model(np.zeros((1, model.input_shape[-1]), dtype=np.float32))  # build the quantisers
    for layer in hgq_model.layers:
        source = model.get_layer(layer.name)
        kernel = np.asarray(source.kernel)
        layer.kernel.assign(kernel)
        layer.bias.assign(np.asarray(source.bias))
        bits = np.asarray(layer.kq.quantizer._b)
        layer.kq.quantizer._b.assign(np.where(kernel == 0, 0.0, bits).astype(bits.dtype))
    return hgq_model


def _epoch_keeper_class():
    import keras
    from hgq.layers import QLayerBase

    class EpochKeeper(keras.callbacks.Callback):
        """Records, after each epoch, the weights, the validation accuracy and the EBOPs."""

        def __init__(self) -> None:
            super().__init__()
            self.records: list[tuple[float, float, list]] = []

        def on_epoch_end(self, epoch, logs=None) -> None:
            ebops = sum(float(np.asarray(layer._ebops)) for layer in self.model._flatten_layers()
                        if isinstance(layer, QLayerBase) and layer.enable_ebops)
            self.records.append((float(logs["val_accuracy"]), ebops, self.model.get_weights()))

    return EpochKeeper


def train_hgq(model, arrays: jets5.Arrays, epochs: int, target_accuracy: float, tolerance: float = 0.005,
              beta_range: tuple[float, float] = (1e-6, 1e-4), learning_rate: float = 1e-3) -> dict:
    """Quantisation-aware training with a bit-width penalty ``beta`` that grows (log-scale) from
    ``beta_range[0]`` to ``beta_range[1]`` over the epochs.

    Keeps the epoch with the fewest EBOPs among those whose validation accuracy is at least
    ``target_accuracy - tolerance`` (the best epoch if none is), restores its weights and calibrates
    the activations' integer bits on the training set (``hgq.utils.trace_minmax``). Returns
    ``{"val_accuracy": [...], "ebops": [...], "chosen": epoch index, "ebops_final": EBOPs}``.
    """
    import keras
    from hgq.utils import trace_minmax
    from hgq.utils.sugar import BetaScheduler, FreeEBOPs, PieceWiseSchedule

    schedule = PieceWiseSchedule([(0, beta_range[0], "log"), (epochs, beta_range[1], "constant")])
    keeper = _epoch_keeper_class()()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(arrays.x_train, arrays.y_train, validation_data=(arrays.x_val, arrays.y_val), epochs=epochs,
              batch_size=256, callbacks=[FreeEBOPs(), BetaScheduler(schedule), keeper], verbose=0)
    accs = np.array([r[0] for r in keeper.records])
    ebops = np.array([r[1] for r in keeper.records])
    good = np.flatnonzero(accs >= target_accuracy - tolerance)
    chosen = int(good[np.argmin(ebops[good])]) if len(good) else int(np.argmax(accs))
    model.set_weights(keeper.records[chosen][2])
    final = trace_minmax(model, arrays.x_train, batch_size=4096)
    return {"val_accuracy": accs.tolist(), "ebops": ebops.tolist(), "chosen": chosen, "ebops_final": float(final)}


# ----------------------------------------------------------------------------- the VAE
def vae_networks(n_inputs: int = 16, hidden: tuple[int, ...] = (32, 16), latent: int = 3):
    """The two halves of the VAE, as Keras models: ``(encoder, decoder)``.

    ``encoder``: Dense+ReLU ``enc1..``, then one linear layer ``latent_params`` with 2*latent outputs,
    ``(mu_1..mu_L, log sigma^2_1..log sigma^2_L)`` — the part that goes on the FPGA. ``decoder``: the
    mirror image, from ``latent`` numbers back to the ``n_inputs`` features. The sampling between
    them and the loss are the VAE's subject: Lecture 11 writes them; :func:`build_vae` is the
    deployment recipe's version.
    """
    import keras

    encoder_layers = [keras.Input((n_inputs,), name="features")]
    encoder_layers += [keras.layers.Dense(w, activation="relu", name=f"enc{i + 1}") for i, w in enumerate(hidden)]
    encoder_layers.append(keras.layers.Dense(2 * latent, name="latent_params"))
    encoder = keras.Sequential(encoder_layers, name="vae_encoder")
    decoder = keras.Sequential([keras.Input((latent,))]
                               + [keras.layers.Dense(w, activation="relu") for w in reversed(hidden)]
                               + [keras.layers.Dense(n_inputs)], name="vae_decoder")
    return encoder, decoder


def build_vae(n_inputs: int = 16, hidden: tuple[int, ...] = (32, 16), latent: int = 3, kl_weight: float = 1.0,
              seed: int = 0):
    """The deployment recipe's VAE as two Keras models: ``(vae, encoder)`` (see :func:`vae_networks`).

    ``vae`` samples ``z = mu + sigma * eps`` (adding the KL term to the loss) and decodes it back to
    the inputs.
    """
    import keras
    from keras import ops

    class SampleWithKL(keras.layers.Layer):
        """``z = mu + exp(log_var / 2) * eps``; adds ``kl_weight * KL(q(z|x) || N(0, 1))`` to the loss."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seeds = keras.random.SeedGenerator(seed)

        def call(self, params, training=None):
            mu, log_var = ops.split(params, 2, axis=-1)
            kl = -0.5 * ops.mean(ops.sum(1.0 + log_var - ops.square(mu) - ops.exp(log_var), axis=-1))
            self.add_loss(kl_weight * kl)
            if not training:
                return mu
            return mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=self.seeds)

    encoder, decoder = vae_networks(n_inputs, hidden, latent)
    inputs = keras.Input((n_inputs,))
    vae = keras.Model(inputs, decoder(SampleWithKL(name="sample")(encoder(inputs))), name="vae")
    return vae, encoder


def fit_vae(vae, x_train: np.ndarray, x_val: np.ndarray, epochs: int, learning_rate: float = 2e-3) -> dict:
    """Train to reconstruct (mean squared error per feature, summed) plus the KL term; returns the history."""
    import keras

    def reconstruction(x, x_hat):
        return keras.ops.sum(keras.ops.square(x - x_hat), axis=-1)

    vae.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=reconstruction)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    return vae.fit(x_train, x_train, validation_data=(x_val, x_val), epochs=epochs, batch_size=256,
                   callbacks=[stop], verbose=0).history


def latent_score(params: np.ndarray) -> np.ndarray:
    """``R_z = sum_i mu_i**2 / sigma_i**2`` from the encoder's (n, 2L) output ``(mu, log sigma^2)``."""
    params = np.asarray(params, dtype=np.float64)
    mu, log_var = np.split(params, 2, axis=-1)
    return np.sum(mu ** 2 * np.exp(-log_var), axis=-1)


# ----------------------------------------------------------------------------- config sources
@dataclass
class Deployable:
    """A trained Keras model ready for ``mlpp hls convert``, with what its checks need.

    ``kind``: ``"classifier"`` (outputs are class scores; ``y_test`` the labels) or
    ``"vae_encoder"`` (outputs are ``(mu, log sigma^2)``; ``y_test`` says 1 for jets that are not
    QCD). ``bit_exact``: True for HGQ2 models, whose FPGA emulation must equal Keras exactly.
    ``float_reference``: outputs of the float model the deployable came from (for accuracy changes).
    """

    name: str
    model: object
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str = "classifier"
    bit_exact: bool = False
    float_reference: np.ndarray | None = None
    calibration: np.ndarray | None = None  # training inputs, for profiling the activations
    info: dict = field(default_factory=dict)


def default_recipe(tier: str | None = None) -> dict:
    """Epochs, sparsity and seed of every model, per tier (the cache key includes them)."""
    tier = settings.tier(tier)
    fast = tier == "fast"
    return {"epochs": 40 if fast else 150, "prune_epochs": 10 if fast else 30, "sparsity": 0.75,
            "hgq_epochs": 30 if fast else 80, "vae_epochs": 40 if fast else 150, "seed": 0}


def _cache_key(name: str, tier: str, recipe: dict) -> str:
    from mlpp.data import dataset_path
    from mlpp.data.cache import read_manifest

    data_path = dataset_path(jets5.CARD, tier)
    data_hash = read_manifest(data_path.parent).get(data_path.name, {}).get("sha256", "")
    blob = json.dumps({"name": name, "tier": tier, "recipe": recipe, "data": data_hash, "v": CACHE_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_weights(name: str, tier: str, model, train: Callable[[], dict], recipe: dict) -> dict:
    """Load ``model``'s weights from the cache, or call ``train()`` and store them atomically.

    The file is ``cache_dir()/hls/<name>-<tier>-<key>.npz`` where ``key`` hashes the recipe, the
    dataset's sha256 and ``CACHE_VERSION``; its sha256 is checked on every load. Returns the
    training summary (stored beside the weights in the manifest).
    """
    from mlpp.data.cache import CorruptCacheError, locked, verify, write_atomic

    folder = settings.cache_dir() / "hls"
    path = folder / f"{name}-{tier}-{_cache_key(name, tier, recipe)}.npz"
    with locked(folder / f".{path.name}.lock"):
        if path.exists():
            try:
                entry = verify(path, f"delete {path} and run 'mlpp hls convert' again")
                with np.load(path) as stored:
                    model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
                return entry.get("summary", {})
            except (CorruptCacheError, ValueError, KeyError):
                path.unlink(missing_ok=True)
        summary = train()
        weights = model.get_weights()

        def writer(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **{f"w{i}": w for i, w in enumerate(weights)})

        write_atomic(path, writer, meta={"model": name, "tier": tier, "summary": jsonable(summary)})
    return summary


def train_float_mlp(arrays: jets5.Arrays, recipe: dict | None = None):
    """Lecture 1's tagger trained, seeded, with ``recipe`` (default :func:`recipe` of the arrays' tier)."""
    from mlpp.training import set_seeds

    recipe = recipe or default_recipe(arrays.tier)
    set_seeds(recipe["seed"], ["keras"])
    model = build_mlp()
    fit_keras_classifier(model, arrays, recipe["epochs"])
    return model


def train_pruned_mlp(float_model, arrays: jets5.Arrays, sparsity: float, recipe: dict | None = None):
    """A copy of ``float_model`` pruned to ``sparsity`` and fine-tuned (seeded); the original is unchanged."""
    import keras

    from mlpp.training import set_seeds

    recipe = recipe or default_recipe(arrays.tier)
    model = keras.models.clone_model(float_model)
    model.set_weights(float_model.get_weights())
    set_seeds(recipe["seed"], ["keras"])
    prune_by_magnitude(model, sparsity, arrays, recipe["prune_epochs"])
    return model


def train_hgq_mlp(start_model, arrays: jets5.Arrays, target_accuracy: float, recipe: dict | None = None):
    """HGQ2 training started from ``start_model`` (see :func:`hgq_from`, :func:`train_hgq`).

    Returns ``(model, summary)``: the calibrated HGQ2 model and :func:`train_hgq`'s summary.
    """
    from mlpp.training import set_seeds

    recipe = recipe or default_recipe(arrays.tier)
    set_seeds(recipe["seed"], ["keras"])
    model = hgq_from(start_model)
    return model, train_hgq(model, arrays, recipe["hgq_epochs"], target_accuracy)


def _float_mlp(arrays: jets5.Arrays, recipe: dict):
    model = build_mlp()
    cached_weights("jets5_mlp_float", arrays.tier, model,
                   lambda: _copy_weights(model, train_float_mlp(arrays, recipe)), recipe)
    return model


def _copy_weights(target, source) -> dict:
    target.set_weights(source.get_weights())
    return {}


def jets5_mlp_float(tier: str | None = None) -> Deployable:
    """The float tagger (to be quantised post-training by the configuration's precision)."""
    tier = settings.tier(tier)
    arrays, recipe = jets5.arrays(tier=tier), default_recipe(tier)
    model = _float_mlp(arrays, recipe)
    reference = np.asarray(model.predict(arrays.x_test, verbose=0))
    return Deployable("jets5_mlp_float", model, arrays.x_test, arrays.y_test, float_reference=reference,
                      calibration=arrays.x_train, info={"recipe": recipe})


def _pruned_mlp(arrays: jets5.Arrays, recipe: dict, float_model):
    model = build_mlp()
    cached_weights("jets5_mlp_pruned", arrays.tier, model, lambda: _copy_weights(
        model, train_pruned_mlp(float_model, arrays, recipe["sparsity"], recipe)), recipe)
    return model


def jets5_mlp_ptq(tier: str | None = None) -> Deployable:
    """The float tagger pruned to 75 % sparsity and fine-tuned; the configuration quantises it."""
    tier = settings.tier(tier)
    arrays, recipe = jets5.arrays(tier=tier), default_recipe(tier)
    float_model = _float_mlp(arrays, recipe)
    reference = np.asarray(float_model.predict(arrays.x_test, verbose=0))
    model = _pruned_mlp(arrays, recipe, float_model)
    return Deployable("jets5_mlp_ptq", model, arrays.x_test, arrays.y_test, float_reference=reference,
                      calibration=arrays.x_train, info={"recipe": recipe, "sparsity": sparsity_of(model)})


def jets5_mlp_hgq(tier: str | None = None) -> Deployable:
    """The pruned tagger trained on, quantisation-aware, with HGQ2 (bit-exact on the FPGA emulation)."""
    tier = settings.tier(tier)
    arrays, recipe = jets5.arrays(tier=tier), default_recipe(tier)
    float_model = _float_mlp(arrays, recipe)
    reference = np.asarray(float_model.predict(arrays.x_test, verbose=0))
    target = model_accuracy(float_model, arrays.x_val, arrays.y_val)
    pruned = _pruned_mlp(arrays, recipe, float_model)
    model = hgq_from(pruned)

    def train() -> dict:
        trained, summary = train_hgq_mlp(pruned, arrays, target, recipe)
        model.set_weights(trained.get_weights())
        return summary

    summary = cached_weights("jets5_mlp_hgq", tier, model, train, recipe)
    return Deployable("jets5_mlp_hgq", model, arrays.x_test, arrays.y_test, bit_exact=True,
                      float_reference=reference, calibration=arrays.x_train,
                      info={"recipe": recipe, "chosen_epoch": summary.get("chosen"),
                            "ebops": summary.get("ebops_final")})


def train_vae(arrays: jets5.Arrays, recipe: dict | None = None):
    """The VAE of :func:`build_vae` trained, seeded, on the gluon and quark jets: ``(vae, encoder)``."""
    from mlpp.training import set_seeds

    recipe = recipe or default_recipe(arrays.tier)
    set_seeds(recipe["seed"], ["keras"])
    vae, encoder = build_vae(seed=recipe["seed"])
    fit_vae(vae, qcd_only(arrays.x_train, arrays.y_train), qcd_only(arrays.x_val, arrays.y_val), recipe["vae_epochs"])
    return vae, encoder


def vae_encoder(tier: str | None = None) -> Deployable:
    """The encoder of a VAE trained on gluon and quark jets; anomalies are W, Z and top jets."""
    tier = settings.tier(tier)
    arrays, recipe = jets5.arrays(tier=tier), default_recipe(tier)
    vae, encoder = build_vae(seed=recipe["seed"])
    cached_weights("vae", tier, vae, lambda: _copy_weights(vae, train_vae(arrays, recipe)[0]), recipe)
    anomalous = (~np.isin(arrays.y_test, jets5.QCD_CLASSES)).astype(int)
    reference = np.asarray(encoder.predict(arrays.x_test, verbose=0))
    return Deployable("vae_encoder", encoder, arrays.x_test, anomalous, kind="vae_encoder", float_reference=reference,
                      calibration=qcd_only(arrays.x_train, arrays.y_train), info={"recipe": recipe})


SOURCES: dict[str, Callable[[str | None], Deployable]] = {
    "jets5_mlp_float": jets5_mlp_float,
    "jets5_mlp_ptq": jets5_mlp_ptq,
    "jets5_mlp_hgq": jets5_mlp_hgq,
    "vae_encoder": vae_encoder,
}
