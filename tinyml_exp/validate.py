"""Rules that span config groups, checked once before any work. Per-group value checks live in
the option classes (`validate()`); this module calls them and adds the cross-group rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from tinyml_exp.errors import ConfigError

if TYPE_CHECKING:
    from tinyml_exp.options import Options


def _check_positive(value: float | int | None, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{key}={value!r} must be > 0")


def validate(cfg: DictConfig, options: Options) -> None:
    _check_positive(cfg.train.epochs, "train.epochs")
    _check_positive(cfg.train.batch_size, "train.batch_size")
    _check_positive(cfg.train.learning_rate, "train.learning_rate")
    _check_positive(cfg.dataset.train_limit, "dataset.train_limit", allow_none=True)
    _check_positive(cfg.dataset.test_limit, "dataset.test_limit", allow_none=True)
    if not 0.0 <= cfg.dataset.val_fraction < 1.0:
        raise ConfigError(f"dataset.val_fraction={cfg.dataset.val_fraction!r} must be in [0, 1)")
    if cfg.export.representative_samples < 0:
        raise ConfigError(f"export.representative_samples={cfg.export.representative_samples!r} must be ≥ 0")
    options.compression.validate()
    if cfg.profile.enabled:
        from tinyml_exp.profile.profiler import check_profile_config

        check_profile_config(cfg.profile, options.target)
    from tinyml_exp.hardware.settings import check_hardware_config

    check_hardware_config(cfg, options.target)
    if options.compression.quantize == "int8" and cfg.export.representative_samples == 0:
        quantization_aware = getattr(options.compression, "quantization_aware", False)
        if not quantization_aware:
            raise ConfigError(
                "compression.quantize=int8 calibrates on representative samples; "
                "set export.representative_samples > 0 (100 is typical)"
            )
