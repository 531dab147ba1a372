"""Quantization-aware training and its collaborative variants: the same annotate → apply →
fine-tune step with a different TFMOT quantization scheme.

    qat    default 8-bit scheme                     (from the base model)
    pqat   prune-preserving scheme                  (after constant-sparsity pruning)
    cqat   cluster-preserving scheme                (after clustering)
    pcqat  cluster- and sparsity-preserving scheme  (after pruning, then sparsity-preserving clustering)

All convert to a full-integer `.tflite` from the ranges learnt in training
(`TFLiteRecipe(quantization_aware=True)`: no representative samples, `supported_ops` left unset).
A plain QAT after pruning would refill the pruned weights; the preserving schemes keep the
zeros and the centroids, and the invariants added by the earlier phases verify that they did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tinyml_exp.compress.base import require
from tinyml_exp.compress.clustering import Cluster
from tinyml_exp.compress.finetune import FineTunedMethod, Phase, PhaseContext
from tinyml_exp.compress.invariants import ClustersKept
from tinyml_exp.compress.pruning import PruneConstant
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


def quantize_scheme(scheme: str) -> Any:
    """default | prune_preserve | cluster_preserve | prune_cluster_preserve -> a TFMOT scheme."""
    import tensorflow_model_optimization as tfmot

    combine = tfmot.experimental.combine
    return {
        "default": tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme,
        "prune_preserve": combine.Default8BitPrunePreserveQuantizeScheme,
        "cluster_preserve": lambda: combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False),
        "prune_cluster_preserve": lambda: combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=True
        ),
    }[scheme]()


def without_kernel_regularizers(model: tf_keras.Model) -> tf_keras.Model:
    """The same model (weights included) with no kernel regularizer.

    Cluster-preserving QAT overwrites each kernel variable with the clustered values in every
    forward pass; the loss reaches the centroids, not the variable. A kernel regularizer (ResNet-8
    has L2) is the one gradient the variable still gets, so the optimizer nudges the kernel off
    its centroids after the last overwrite (measured: 27 distinct values in a ResNet-8 channel
    promised 16, 17 left after int8 rounding). The penalty cannot move the centroids, so dropping
    it changes nothing else."""
    import tf_keras as keras

    def clone_function(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
        config = layer.get_config()
        if config.get("kernel_regularizer") is not None:
            config["kernel_regularizer"] = None
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone_function)
    copy.set_weights(model.get_weights())
    return copy


@contextmanager
def _quiet_missing_kernel_gradients(scheme: str) -> Iterator[None]:
    """Under cluster-preserving QAT the loss reaches the centroids, not the kernel variables, and
    Keras warns about it every epoch; expected here, so not shown."""
    if "cluster" not in scheme:
        yield
        return

    def keep(record: logging.LogRecord) -> bool:
        return "Gradients do not exist for variables" not in record.getMessage()

    logger = logging.getLogger("tensorflow")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def quantization_aware_training(model: tf_keras.Model, ctx: PhaseContext, scheme: str) -> tf_keras.Model:
    import tensorflow_model_optimization as tfmot

    if "cluster" in scheme:
        model = without_kernel_regularizers(model)
    quantized = tfmot.quantization.keras.quantize_apply(
        tfmot.quantization.keras.quantize_annotate_model(model), scheme=quantize_scheme(scheme)
    )
    with _quiet_missing_kernel_gradients(scheme):
        ctx.fine_tune(quantized, "qat")
    if "cluster" in scheme:
        # TFMOT's cluster-preserving scheme re-derives centroids per output channel for Conv2D
        # kernels whose channels each use (nearly) all centroids, and trains them separately: the
        # promise that survives is n values per channel (all an int8 .tflite can keep anyway).
        ctx.invariants[:] = [
            ClustersKept(inv.clusters, per_channel=True) if isinstance(inv, ClustersKept) else inv
            for inv in ctx.invariants
        ]
        # Drops the centroid and index variables CQAT trains with; the kernels already hold the
        # clustered values and the fake-quant ranges stay for the converter.
        quantized = tfmot.experimental.combine.strip_clustering_cqat(quantized)
    return quantized


@register_option("compression", "qat")
@dataclass
class QAT(FineTunedMethod):
    quantize: str = "int8"
    quantization_aware: ClassVar[bool] = True
    scheme: ClassVar[str] = "default"

    def validate(self) -> None:
        super().validate()
        require(
            self.quantize == "int8",
            "quantize",
            self.quantize,
            f"is not possible for compression={self.name}: quantization-aware training targets int8",
        )

    def qat_phase(self) -> Phase:
        return Phase("qat", lambda model, ctx: quantization_aware_training(model, ctx, self.scheme))

    def phases(self) -> list[Phase]:
        return [self.qat_phase()]


@register_option("compression", "pqat")
@dataclass
class PQAT(QAT, PruneConstant):
    scheme: ClassVar[str] = "prune_preserve"

    def phases(self) -> list[Phase]:
        return [self.prune_phase(), self.qat_phase()]


@register_option("compression", "cqat")
@dataclass
class CQAT(QAT, Cluster):
    scheme: ClassVar[str] = "cluster_preserve"

    def phases(self) -> list[Phase]:
        return [self.cluster_phase(preserve_sparsity=False), self.qat_phase()]


@register_option("compression", "pcqat")
@dataclass
class PCQAT(QAT, Cluster, PruneConstant):
    scheme: ClassVar[str] = "prune_cluster_preserve"

    def phases(self) -> list[Phase]:
        return [self.prune_phase(), self.cluster_phase(preserve_sparsity=True), self.qat_phase()]
