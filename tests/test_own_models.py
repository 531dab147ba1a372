"""Networks a user writes without touching the package: a layer list, a Python builder, a Keras file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import compose_config, run_app, tiny_overrides
from tinyml_exp.config import to_object
from tinyml_exp.errors import ConfigError
from tinyml_exp.models.builder import Builder
from tinyml_exp.models.keras_file import KerasFile
from tinyml_exp.models.sequential import Sequential


def trained_tflite(architecture: str, overrides: list[str] = ()) -> tuple[int, bytes, bytes]:
    """(parameters, float .tflite, int8 .tflite) of `architecture` after one seeded epoch."""
    from tinyml_exp.export.tflite import TFLiteRecipe, convert
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    cfg = compose_config(
        ["dataset=synthetic", "dataset.num_train=400", f"architecture={architecture}", *overrides]
    )
    data = to_object(cfg.dataset).load(0)
    set_global_seed(0)
    model = to_object(cfg.architecture).build(data.input_shape, data.num_classes)
    compile_model(model, "adam", 1e-3, from_logits=True)
    fit(model, data, epochs=1, batch_size=32, verbose=0)
    return (
        model.count_params(),
        convert(model, TFLiteRecipe("none")),
        convert(model, TFLiteRecipe("int8"), data.x_train[:50]),
    )


def test_the_course_cnn_as_a_layer_list_is_seed_cnn_byte_for_byte() -> None:
    builtin = trained_tflite("seed_cnn")
    listed = trained_tflite("seed_cnn_sequential")
    assert builtin[0] == listed[0] == 20_410
    assert listed[1] == builtin[1], "float .tflite differs"
    assert listed[2] == builtin[2], "int8 .tflite differs"


def test_every_layer_key_is_a_sweepable_override() -> None:
    cfg = compose_config(
        ["architecture=sequential", "architecture.layers.0.filters=5", "architecture.layers.0.kernel_size=5"]
    )
    model = to_object(cfg.architecture).build((28, 28), 10)
    conv = model.get_layer("l0_conv2d")
    assert conv.filters == 5 and conv.kernel_size == (5, 5)
    assert model.count_params() == 5 * 25 + 5 + (12 * 12 * 5) * 10 + 10


def conv1d_layers() -> list[dict]:
    return [
        {"type": "Conv1D", "filters": 6, "kernel_size": 5, "strides": 2, "activation": "relu"},
        {"type": "MaxPooling1D", "pool_size": 2},
        {"type": "Conv1D", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "GlobalAveragePooling1D"},
        {"type": "Dense"},
    ]


def test_1d_layers_compute_what_keras_conv1d_computes() -> None:
    import tf_keras as keras

    ours = Sequential(name="s", layers=conv1d_layers()).build((40, 3), 4)
    inputs = keras.Input((40, 3))
    x = keras.layers.Conv1D(6, 5, strides=2, activation="relu")(inputs)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(4, 3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    reference = keras.Model(inputs, keras.layers.Dense(4)(x))
    assert ours.count_params() == reference.count_params()
    weights = [w.reshape(r.shape) for w, r in zip(ours.get_weights(), reference.get_weights(), strict=True)]
    reference.set_weights(weights)
    x = np.random.default_rng(0).random((8, 40, 3), dtype=np.float32)
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    single = Sequential(name="s", layers=conv1d_layers()).build((40,), 4)  # N × T windows gain a channel
    assert single.input_shape == (None, 40) and single.output_shape == (None, 4)


def test_relu6_and_hard_swish_convert_to_int8() -> None:
    from ai_edge_litert.interpreter import Interpreter

    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    layers = [
        {"type": "DepthwiseConv2D", "kernel_size": 3, "activation": "relu6"},
        {"type": "SeparableConv2D", "filters": 4, "kernel_size": 3, "activation": "hard_swish"},
        {"type": "BatchNormalization"},
        {"type": "Activation", "activation": "hard_swish"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Dropout", "rate": 0.1},
        {"type": "Flatten"},
        {"type": "Dense", "units": 8, "activation": "relu6"},
        {"type": "Dense", "units": "classes"},
    ]
    model = Sequential(name="s", layers=layers, softmax_output=True).build((12, 12), 3)
    x = np.random.default_rng(0).random((1, 12, 12), dtype=np.float32) * 8 - 4
    gate = model.get_layer("l3_activation_hs")
    probe = type(model)(model.inputs, [model.get_layer("l3_activation").output, gate.output])
    pre, post = probe.predict(x, verbose=0)
    np.testing.assert_allclose(post, pre * np.clip(pre + 3, 0, 6) / 6, rtol=1e-5, atol=1e-6)
    assert model.layers[-1].get_config()["activation"] == "softmax"
    tflite = convert(
        model, TFLiteRecipe("int8"), np.random.default_rng(1).random((20, 12, 12), dtype=np.float32)
    )
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([{"type": "LSTM", "units": 3}], r"architecture.layers.0.type='LSTM' is not one of Conv1D, "),
        ([{"type": "Conv2D", "filter": 3}], r"architecture.layers.0 \(Conv2D\): .*filter"),
        ([{"type": "Conv2D", "filters": 3, "kernel_size": 3}], r"end in shape \[26, 26, 3\], not \[10\]"),
        ([], "is empty"),
    ],
    ids=["unknown_type", "bad_kwarg", "wrong_end", "empty"],
)
def test_bad_layer_lists_name_the_key(layers: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Sequential(name="net", layers=layers).build((28, 28), 10)


# -------------------------------------------------------------------------------------------- builder


USER_MODULE = """
import tf_keras as keras

def build_net(input_shape, num_classes, width=4):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

def not_a_model(input_shape, num_classes):
    return "a string"
"""


def test_builder_calls_the_users_function_with_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_models_for_test.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)  # a module name is found in the directory the user runs from
    model = Builder(name="builder", function="my_models_for_test:build_net", kwargs={"width": 7}).build(
        (5, 5), 3
    )
    assert model.count_params() == 25 * 7 + 7 + 7 * 3 + 3
    by_path = Builder(name="b", function=f"{tmp_path}/my_models_for_test.py:build_net").build((5,), 2)
    assert by_path.output_shape == (None, 2)
    shipped = to_object(
        compose_config(["architecture=builder", "architecture.kwargs.filters=3"]).architecture
    )
    assert shipped.build((28, 28), 10).get_layer("conv").filters == 3


def test_builder_fingerprint_follows_the_source_file(tmp_path: Path) -> None:
    path = tmp_path / "net.py"
    path.write_text(USER_MODULE)
    builder = Builder(name="b", function=f"{path}:build_net")
    before = builder.fingerprint()
    path.write_text(USER_MODULE + "\n# edited\n")
    assert before and builder.fingerprint() != before


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("no_such_module_xyz:build", r"no module 'no_such_module_xyz' on the Python path or in "),
        ("tinyml_exp.models.example_builder:nope", r"example_builder has no function 'nope'"),
        ("build_net", r"expected 'module:function' or 'file.py:function'"),
        ("/nonexistent/net.py:build", r"/nonexistent/net.py does not exist"),
        (
            "{tmp}/broken.py:build",
            r"importing .*broken.py failed: ModuleNotFoundError: No module named 'not_installed_dep'",
        ),
        ("{tmp}/user.py:not_a_model", r"returned str, not a tf_keras.Model"),
        (
            "{tmp}/user.py:build_net",
            r"called with architecture.kwargs: .*unexpected keyword argument 'depth'",
        ),
    ],
)
def test_builder_paths_that_do_not_work_name_the_fix(tmp_path: Path, function: str, message: str) -> None:
    (tmp_path / "broken.py").write_text("import not_installed_dep\n")
    (tmp_path / "user.py").write_text(USER_MODULE)
    kwargs = {"depth": 2} if function.endswith("build_net") else {}
    with pytest.raises(ConfigError, match=message):
        Builder(name="b", function=function.format(tmp=tmp_path), kwargs=kwargs).build((4,), 2)


@pytest.mark.slow
def test_app_with_a_builder_that_does_not_import_is_one_line(tmp_path: Path) -> None:
    done = run_app(
        ["architecture=builder", "architecture.function=no_such_module_xyz:build", *tiny_overrides(tmp_path)],
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert done.returncode != 0 and "Traceback" not in output
    assert len(errors) == 1 and "architecture.function: no module 'no_such_module_xyz'" in errors[0], output


# ----------------------------------------------------------------------------------------- keras_file


def saved_model(path: Path, softmax: bool = False):
    import tf_keras as keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((28, 28), name="image")
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(10, activation="softmax" if softmax else None)(x)
    model = keras.Model(inputs, outputs)
    model.save(path)
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_file_is_the_model_it_holds(tmp_path: Path, suffix: str) -> None:
    original = saved_model(tmp_path / f"m{suffix}")
    arch = KerasFile(name="keras_file", path=str(tmp_path / f"m{suffix}"))
    loaded = arch.build((28, 28), 10)
    for a, b in zip(original.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert arch.pretrained and len(arch.fingerprint()) == 20


def test_keras_file_bad_inputs_name_the_fix(tmp_path: Path) -> None:
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(ConfigError, match=r"junk.keras' is not a Keras model tf_keras can read"):
        KerasFile(name="k", path=str(tmp_path / "junk.keras")).build((28, 28), 10)
    with pytest.raises(ConfigError, match="no such file"):
        KerasFile(name="k", path=str(tmp_path / "absent.h5")).build((28, 28), 10)
    with pytest.raises(ConfigError, match=r"is not a \.keras/\.h5/\.hdf5 Keras model file"):
        KerasFile(name="k", path=str(tmp_path / "model.tflite")).build((28, 28), 10)
    saved_model(tmp_path / "m.keras", softmax=True)
    arch = KerasFile(name="k", path=str(tmp_path / "m.keras"), softmax_output=True)
    with pytest.raises(
        ConfigError, match=r"takes inputs of shape \[28, 28\] but the dataset's samples are \[32, 32, 3\]"
    ):
        arch.build((32, 32, 3), 10)
    with pytest.raises(ConfigError, match=r"gives outputs of shape \[10\] but the dataset has 4 classes"):
        arch.build((28, 28), 4)
    with pytest.raises(ConfigError, match=r"ends in a softmax: set architecture\.softmax_output=true"):
        KerasFile(name="k", path=str(tmp_path / "m.keras")).build((28, 28), 10)


def test_keras_file_may_skip_training_other_networks_may_not() -> None:
    from tinyml_exp.pipeline import Options
    from tinyml_exp.validate import validate

    cfg = compose_config(["architecture=keras_file", "train.epochs=0", "dataset=synthetic"])
    validate(cfg, Options.from_config(cfg))
    cfg = compose_config(["architecture=seed_cnn_sequential", "train.epochs=0", "dataset=synthetic"])
    with pytest.raises(ConfigError, match=r"train.epochs=0 must be > 0"):
        validate(cfg, Options.from_config(cfg))


@pytest.mark.slow
def test_app_quantizes_a_keras_file_without_training(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    saved_model(tmp_path / "vendor.keras")
    args = [
        "architecture=keras_file",
        f"architecture.path={tmp_path}/vendor.keras",
        "compression=ptq_int8",
        *tiny_overrides(tmp_path),
        "train.epochs=0",
        "profile.arena_probe=false",
        f"hydra.run.dir={tmp_path}/outputs/run",
    ]
    done = run_app(args, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["params/total"] == 28 * 28 * 10 + 10
    assert "accuracy/tflite" in run.data.metrics and "train/loss" not in run.data.metrics
