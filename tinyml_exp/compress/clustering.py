"""Weight clustering (TFMOT `cluster_weights`): each kernel keeps at most `clusters` distinct
values (centroids), fine-tuned so accuracy recovers. The `.tflite` stays as large; its gzip size
shows what the repeated values are worth."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.compress.base import require
from tinyml_exp.compress.finetune import FineTunedMethod, Phase, PhaseContext, wrap_layers
from tinyml_exp.compress.invariants import ClustersKept
from tinyml_exp.compress.measure import is_kernel_layer
from tinyml_exp.errors import ConfigError
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras

log = logging.getLogger(__name__)

# TFMOT's CentroidInitialization members, as config values.
CENTROID_INITS = ("kmeans_plus_plus", "density_based", "linear", "random")
# TFMOT silently leaves a layer unclustered above this many centroids.
MAX_CLUSTERS = 1024


@register_option("compression", "cluster")
@dataclass
class Cluster(FineTunedMethod):
    clusters: int = 16
    init: str = "kmeans_plus_plus"

    def validate(self) -> None:
        super().validate()
        require(
            2 <= self.clusters <= MAX_CLUSTERS,
            "clusters",
            self.clusters,
            f"must be in [2, {MAX_CLUSTERS}]",
            "one cluster would make every weight of a kernel equal",
        )
        require(self.init in CENTROID_INITS, "init", self.init, f"is not one of {', '.join(CENTROID_INITS)}")

    def phases(self) -> list[Phase]:
        return [self.cluster_phase(preserve_sparsity=False)]

    def cluster_phase(self, preserve_sparsity: bool) -> Phase:
        """`preserve_sparsity`: keep the zeros of a pruned model (one centroid is pinned at 0)."""
        return Phase("cluster", lambda model, ctx: self._cluster(model, ctx, preserve_sparsity))

    def _cluster(self, model: tf_keras.Model, ctx: PhaseContext, preserve_sparsity: bool) -> tf_keras.Model:
        import tensorflow_model_optimization as tfmot

        # The experimental entry point is the public one with `preserve_sparsity` (PCQAT).
        from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster

        init = tfmot.clustering.keras.CentroidInitialization[self.init.upper()]
        clustered: list[str] = []
        small: list[str] = []

        def wrap(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer | None:
            if not is_kernel_layer(layer):
                return None
            if layer.kernel.shape.num_elements() <= self.clusters:
                small.append(layer.name)  # already has no more values than clusters
                return None
            clustered.append(layer.name)
            return cluster.cluster_weights(
                layer,
                number_of_clusters=self.clusters,
                cluster_centroids_init=init,
                preserve_sparsity=preserve_sparsity,
            )

        wrapped = wrap_layers(model, wrap)
        if not clustered:
            raise ConfigError(
                f"compression.clusters={self.clusters}: no kernel of {model.name} has more weights"
            )
        if small:
            log.info(
                "%s: kernels of %s have ≤ %d weights, left as they are",
                self.name,
                ", ".join(small),
                self.clusters,
            )
        ctx.fine_tune(wrapped, "cluster")
        stripped = tfmot.clustering.keras.strip_clustering(wrapped)
        ctx.metrics["clusters/target"] = float(self.clusters)
        ctx.invariants.append(ClustersKept(self.clusters))
        return stripped
