"""The CLI's range-hijack warning (one engine rule, engine.quant.hijack, shared with the GUI)."""

from __future__ import annotations

import numpy as np

from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.main import main
from squeezelens.engine.quant import QuantConfig


def hijacked_checkpoint(tmp_path):
    """A random 256x96 SqueezeDet whose fire8/squeeze1x1 bias reaches +9 (the rest ~±0.2)."""
    from squeezelens.engine.checkpoint.writers import save_npz
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes

    spec = ArchSpec().with_input_size((256, 96))
    rng = np.random.default_rng(0)
    weights = {k: (rng.standard_normal(s) * 0.05).astype(np.float32)
               for k, s in expected_shapes(spec).items()}  # fmt: skip
    weights["fire8/squeeze1x1/biases"][5] = 9.0
    return save_npz(tmp_path / "hijacked.npz", weights, spec), weights


def test_quantize_warns_on_stderr_and_float_biases_silence_it(tmp_path, capsys):
    ckpt, _ = hijacked_checkpoint(tmp_path)
    assert main(["quantize", "--checkpoint", str(ckpt), "--out", str(tmp_path / "q.npz")]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "hijacks" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: fire8/squeeze1x1/biases hijacks the global range")
    assert "float biases (--quantize-biases off)" in warnings[0]
    out = tmp_path / "q2.npz"
    assert main(["quantize", "--checkpoint", str(ckpt), "--quantize-biases", "off",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "hijacks" not in capsys.readouterr().err


def test_one_warning_per_tensor_over_a_sweeps_widths(tmp_path, capsys):
    _, weights = hijacked_checkpoint(tmp_path)
    configs = [None, *(QuantConfig(bits=b) for b in (3, 4, 8))]
    assert warn_range_hijacks(weights, configs) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "the 3-bit step" in line  # the first width's numbers
    assert line.endswith("(at 3, 4, 8 bits in this run)")
    assert warn_range_hijacks(weights, [None]) == 0
    assert capsys.readouterr().err == ""
