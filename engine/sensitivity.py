"""Per-layer sensitivity: quantize one layer at a time and measure the mAP it costs.

Ristretto's per-group bit-width analysis, but detection-aware: the score is the
KITTI mAP on a chosen image set.  :func:`recommend_overrides` turns the result
into a mixed-precision ``overrides`` mapping the user can apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from engine.jobs import CancelToken, check
from engine.model.spec import layer_names


@dataclass(frozen=True)
class SensitivityResult:
    """mAP (R11, all) of the float model and with each layer alone quantized.

    drops[(layer, bits)] = float_map - map with only that layer at that many bits.
    """

    float_map: float
    drops: dict
    bits: tuple[int, ...]
    layers: tuple[str, ...]

    def drop(self, layer: str, bits: int) -> float:
        return self.drops[(layer, bits)]

    def to_dict(self) -> dict:
        return {
            "float_map": self.float_map,
            "bits": list(self.bits),
            "drops": {
                layer: {str(b): self.drops[(layer, b)] for b in self.bits} for layer in self.layers
            },
        }


def single_layer_config(base, layer: str, bits: int, all_layers: Sequence[str]):
    """A config that quantizes only ``layer`` at ``bits``; every other layer stays float."""
    overrides = {name: "float" for name in all_layers if name != layer}
    return replace(
        base,
        bits=bits,
        overrides=overrides,
        quantize_first_layer=base.quantize_first_layer or layer == "conv1",
    )


def layer_sensitivity(
    detector,
    dataset,
    base,
    bits: Sequence[int] = (4, 6, 8),
    protocol: str = "official",
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> SensitivityResult:
    """mAP cost of quantizing each layer alone at each bit width (on dataset's images)."""
    from engine.eval import evaluate_detections
    from engine.sweep import PreparedInputs

    prepared = PreparedInputs(detector, dataset.records, cancel=cancel)
    layers = tuple(layer_names(detector.spec.variant))

    def score(quant) -> float:
        dets = prepared.detect_all(detector, quant, cancel=cancel)
        result = evaluate_detections(
            dataset.records, dets, protocol=protocol, classes=tuple(detector.class_names)
        )
        return float(result.to_json_dict()["map"]["r11"]["all"])

    float_map = score(None)
    drops, total = {}, len(layers) * len(bits)
    for i, (layer, b) in enumerate((layer, b) for layer in layers for b in bits):
        check(cancel)
        drops[(layer, b)] = float_map - score(single_layer_config(base, layer, b, layers))
        if progress:
            progress(i + 1, total)
    return SensitivityResult(float_map, drops, tuple(bits), layers)


def recommend_overrides(
    result: SensitivityResult, tolerance: float = 0.005
) -> dict[str, int | str]:
    """Per layer, the fewest bits whose mAP drop is within tolerance; 'float' if none is.

    Applying the result as ``QuantConfig.overrides`` gives a mixed-precision model
    whose layers each cost at most ``tolerance`` mAP alone.
    """
    out: dict[str, int | str] = {}
    for layer in result.layers:
        fits = [b for b in sorted(result.bits) if result.drop(layer, b) <= tolerance]
        out[layer] = fits[0] if fits else "float"
    return out
