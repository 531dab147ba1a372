"""End to end: a trained int8 seed CNN -> generated C -> firmware -> QEMU -> serial, compared with
the TFLite interpreter's reference kernels (BUILTIN_REF), value for value."""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pytest

from tests.helpers import require_commands, trained_seed_cnn
from tinyml_exp.hardware.build import FirmwareBuild, build_firmware
from tinyml_exp.hardware.client import DeviceClient
from tinyml_exp.hardware.protocol import CounterUnit
from tinyml_exp.hardware.qemu import run_qemu

log = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.firmware,
    require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm"),
]

N_INPUTS = 40
# Target budgets of b_l475e_iot01a.yaml (flash 1 MB - 64 KB reserved; SRAM1 holds data + bss).
L475_FLASH_BUDGET_BYTES = 1024 * 1024 - 64 * 1024
L475_SRAM1_BYTES = 96 * 1024


@pytest.fixture(scope="module")
def int8_model() -> tuple[bytes, np.ndarray]:
    """The seed CNN after one epoch on synthetic data, PTQ int8; and float test images."""
    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    model, data, _ = trained_seed_cnn()
    return convert(model, TFLiteRecipe("int8"), data.x_train[:100]), data.x_test[:N_INPUTS]


@pytest.fixture(scope="module")
def generated(int8_model: tuple[bytes, np.ndarray], tmp_path_factory: pytest.TempPathFactory):
    from tinyml_exp.export.cgen import generate_c

    tflite, _ = int8_model
    # reference="tflite": the arithmetic of the TFLite interpreter's reference kernels, compared below.
    return generate_c(tflite, tmp_path_factory.mktemp("model"), "seed_cnn_int8", reference="tflite")


@pytest.fixture(scope="module")
def builds(generated, tmp_path_factory: pytest.TempPathFactory) -> dict[str, FirmwareBuild]:
    model_dir = generated.model_c.parent
    return {
        board: build_firmware(board, model_dir, tmp_path_factory.mktemp(board))
        for board in ("qemu_netduinoplus2", "b_l475e_iot01a")
    }


def test_generated_model_fits_the_real_board(builds: dict[str, FirmwareBuild]) -> None:
    for board, build in builds.items():
        log.info(
            "%s with the generated seed CNN: text %d, data %d, bss %d bytes",
            board,
            build.text_bytes,
            build.data_bytes,
            build.bss_bytes,
        )
    l475 = builds["b_l475e_iot01a"]
    assert l475.flash_bytes < L475_FLASH_BUDGET_BYTES
    assert l475.ram_bytes < L475_SRAM1_BYTES


def test_qemu_inference_is_bit_exact_with_tflite_reference(
    int8_model: tuple[bytes, np.ndarray], generated, builds: dict[str, FirmwareBuild]
) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tinyml_exp.evaluate.interpreters import TensorSpec, quantize_input

    tflite, images = int8_model
    interpreter = Interpreter(model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    spec = TensorSpec(tuple(inp["shape"]), np.dtype(inp["dtype"]), *inp["quantization"])

    with (
        run_qemu(builds["qemu_netduinoplus2"].elf) as instance,
        DeviceClient(instance.open_serial()) as device,
    ):
        info = device.connect(timeout_s=20.0)
        assert info.build_id == zlib.crc32(tflite)
        assert info.model_name == "seed_cnn_int8"
        assert info.activation_bytes == generated.activation_bytes
        assert info.counter_unit == CounterUnit.INSTRUCTIONS
        assert info.input.shape == tuple(inp["shape"]) and info.output.shape == tuple(out["shape"])
        assert (np.float32(info.input.scale), info.input.zero_point) == (
            np.float32(inp["quantization"][0]),
            spec.zero_point,
        )
        assert np.float32(info.output.scale) == np.float32(out["quantization"][0])

        counts = []
        for image in images:
            x = quantize_input(image[np.newaxis], spec)
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            expected = interpreter.get_tensor(out["index"]).tobytes()
            output, count = device.infer(x.tobytes())
            assert output == expected
            counts.append(count)
        x0 = quantize_input(images[:1], spec).tobytes()
        assert device.infer(x0).count == counts[0]  # exact instruction count: repeatable

    # The Cortex-M4's SMLAD does two MACs in one instruction: fewer instructions than MACs / 2 is
    # impossible, so this also checks that the count measures the whole inference.
    assert min(counts) > generated.macs // 2
    log.info(
        "seed CNN int8 on QEMU: %d MACs, median %d instructions (%.2f per MAC), %d inputs bit-exact",
        generated.macs,
        int(np.median(counts)),
        np.median(counts) / generated.macs,
        len(counts),
    )
