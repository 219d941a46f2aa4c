"""Per-layer sensitivity: quantize one layer at a time and measure the mAP it costs.

Ristretto's per-group bit-width analysis, but detection-aware: the score is the
KITTI mAP on a chosen image set.  :func:`recommend_overrides` turns the result
into a mixed-precision ``overrides`` mapping the user can apply.

The tested layer is rounded onto exactly the grid it gets under the full
config with that layer at the tested bits (:func:`single_layer_config`): every
layer the config quantizes takes part in the ranges (under ``scale="global"``
the tested layer shares the whole model's range), but only the tested layer is
rounded; the others keep their float values, and activations stay float.  So
what is measured is what the recommendation later applies.

GUI and scripts::

    bits = sensitivity_bits(config)                 # e.g. (5, 6, 7, 8) for an 8-bit config
    result = layer_sensitivity(detector, dataset, config, bits=bits)
    config = apply_recommendation(config, result)   # or recommend_overrides(result, base=config)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.model.spec import layer_names
from squeezelens.engine.quant.config import MIN_BITS, PartialConfig, QuantConfig

if TYPE_CHECKING:
    from squeezelens.engine.sweep import DetectPoints


@dataclass(frozen=True)
class SensitivityResult:
    """mAP (R11, all) of the float model and with each layer alone quantized.

    drops[(layer, bits)] = float_map - map with only that layer at that many bits.
    base: the config the layers were tested under (None in hand-made results).
    images: how many images were scored (0: not recorded).
    noise[(layer, bits)]: the bootstrap spread of that drop (:func:`with_noise`; empty
    until measured).
    """

    float_map: float
    drops: dict[tuple[str, int], float]
    bits: tuple[int, ...]
    layers: tuple[str, ...]
    base: QuantConfig | None = None
    images: int = 0
    noise: dict[tuple[str, int], float] = field(default_factory=dict)

    def drop(self, layer: str, bits: int) -> float:
        return self.drops[(layer, bits)]

    def to_dict(self) -> dict:
        out = {
            "float_map": self.float_map,
            "bits": list(self.bits),
            "base": None if self.base is None else self.base.to_dict(),
            "images": self.images,
            "drops": {
                layer: {str(b): self.drops[(layer, b)] for b in self.bits} for layer in self.layers
            },
        }
        if self.noise:
            out["noise"] = {
                layer: {
                    str(b): self.noise[(layer, b)] for b in self.bits if (layer, b) in self.noise
                }
                for layer in self.layers
            }
        return out


def sensitivity_bits(base: QuantConfig, span: int = 3) -> tuple[int, ...]:
    """The widths worth testing for a config: ``base.bits`` and the ``span`` below it."""
    return tuple(range(max(MIN_BITS, base.bits - span), base.bits + 1))


def quantized_layers(base: QuantConfig, all_layers: Sequence[str]) -> tuple[str, ...]:
    """The layers ``base`` quantizes (their kernels), in forward order: what is tested by default."""
    return tuple(layer for layer in all_layers if base.layer_bits(layer) is not None)


def single_layer_config(base: QuantConfig, layer: str, bits: int) -> PartialConfig:
    """``base`` with ``layer`` at ``bits``, planned in full but rounding only ``layer``.

    Activations stay float (the analysis measures the weights of one layer).
    """
    full = base.replace(overrides={**dict(base.overrides), layer: bits}, activation_bits=None)
    values = {f.name: getattr(full, f.name) for f in dataclasses.fields(QuantConfig)}
    return PartialConfig(**values, rounded=(layer,))


def layer_sensitivity(
    detector,
    dataset,
    base: QuantConfig,
    bits: Sequence[int] = (4, 6, 8),
    protocol: str = "official",
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
    layers: Sequence[str] | None = None,
    detect: DetectPoints | None = None,
    on_detections: Callable[[tuple[str, int] | None, dict], None] | None = None,
) -> SensitivityResult:
    """mAP cost of quantizing each layer alone at each bit width (on dataset's images).

    layers: default :func:`quantized_layers` (those ``base`` quantizes; conv1 only
    when ``base.quantize_first_layer``), so the recommendation keeps the set of
    layers that share the ranges.  detect: where the detections of each tested
    config come from (default in this process, inputs prepared once;
    :func:`squeezelens.engine.distributed.point_source` runs them on Ray).
    on_detections(key, detections by stem): called for the float model (key None)
    and every (layer, bits), e.g. to measure the noise of the drops (:func:`with_noise`).
    """
    from squeezelens.engine.eval import evaluate_detections
    from squeezelens.engine.sweep import SweepPoint, prepared_detections

    all_layers = layer_names(detector.spec.variant)
    layers = tuple(layers) if layers is not None else quantized_layers(base, all_layers)
    tested = [(layer, b) for layer in layers for b in bits]
    points = [SweepPoint(None)] + [SweepPoint(single_layer_config(base, *t)) for t in tested]
    keys: list[tuple[str, int] | None] = [None, *tested]
    maps: list[float] = []
    detect = detect or prepared_detections(detector, dataset, cancel)
    with closing(detect(points)) as stream:
        for key, (_, dets) in zip(keys, stream):
            check(cancel)
            if on_detections is not None:
                on_detections(key, dets)
            result = evaluate_detections(
                dataset.records, dets, protocol=protocol, classes=tuple(detector.class_names)
            )
            maps.append(float(result.to_json_dict()["map"]["r11"]["all"]))
            if progress and len(maps) > 1:
                progress(len(maps) - 1, len(tested))
    drops = {t: maps[0] - m for t, m in zip(tested, maps[1:], strict=True)}
    return SensitivityResult(maps[0], drops, tuple(bits), layers, base, len(dataset.records))


def with_noise(
    result: SensitivityResult,
    records: Sequence,
    detections: dict,
    protocol: str = "official",
    classes: Sequence[str] = ("car", "pedestrian", "cyclist"),
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> SensitivityResult:
    """``result`` with the bootstrap spread of every drop (:func:`engine.bootstrap.paired_bootstrap`
    over ``records``); ``detections``: what ``on_detections`` received (None: float)."""
    from squeezelens.engine.bootstrap import paired_bootstrap

    others = {k: v for k, v in detections.items() if k is not None}
    noise = paired_bootstrap(records, detections[None], others, protocol, classes,
                             progress=progress, cancel=cancel)  # fmt: skip
    return dataclasses.replace(result, noise=noise)


def recommend_overrides(
    result: SensitivityResult, tolerance: float = 0.005, base: QuantConfig | None = None
) -> dict[str, int | str]:
    """Per tested layer, the fewest bits whose mAP drop is within tolerance; 'float' if none is.

    Applying the result as ``QuantConfig.overrides`` gives a mixed-precision model
    whose layers each cost at most ``tolerance`` mAP alone.  With ``base``
    (default ``result.base``) the result is the complete overrides to set on
    it: the base's own overrides of untested layers are kept, and a layer is
    left out when the base already gives it the recommended bits.  (A layer
    recommended "float" leaves the shared range, so under ``global`` or
    ``groups`` scale the other layers' grids may narrow a little.)
    """
    base = base if base is not None else result.base
    out: dict[str, int | str] = dict(base.overrides) if base is not None else {}
    for layer in result.layers:
        fits = [b for b in sorted(result.bits) if result.drop(layer, b) <= tolerance]
        choice: int | str = fits[0] if fits else "float"
        out.pop(layer, None)
        given = None if base is None else base.replace(overrides=()).layer_bits(layer)
        if base is None or choice != (given if given is not None else "float"):
            out[layer] = choice
    return out


def apply_recommendation(
    base: QuantConfig, result: SensitivityResult, tolerance: float = 0.005
) -> QuantConfig:
    """``base`` with the recommended per-layer bits as its overrides."""
    return base.replace(overrides=recommend_overrides(result, tolerance, base=base))
