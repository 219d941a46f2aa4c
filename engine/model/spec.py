"""Architecture description of a SqueezeDet network, inferred from its tensors.

A checkpoint stores only tensors; what their shapes cannot tell (input size,
class names, anchor shapes) comes from a JSON sidecar or the official KITTI
configuration.  :func:`infer_spec` never hard-codes the number of classes,
anchors per cell, the ConvDet kernel or the variant: all come from shapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from squeezelens.engine.errors import InputError

KITTI_CLASSES = ("car", "pedestrian", "cyclist")
KITTI_INPUT_SIZE = (1248, 384)  # (W, H)
KITTI_ANCHOR_SHAPES = (
    (36.0, 37.0), (366.0, 174.0), (115.0, 59.0), (162.0, 87.0), (38.0, 90.0),
    (258.0, 173.0), (224.0, 108.0), (78.0, 170.0), (72.0, 43.0),
)  # fmt: skip
BGR_MEANS = (103.939, 116.779, 123.68)
INPUT_SIDE_RANGE = (32, 8192)  # smallest and largest network input side, pixels

# (name, squeeze, expand1x1, expand3x3) per variant; pools after the named layers.
FIRES = {
    "squeezedet": (
        ("fire2", 16, 64, 64), ("fire3", 16, 64, 64), ("fire4", 32, 128, 128),
        ("fire5", 32, 128, 128), ("fire6", 48, 192, 192), ("fire7", 48, 192, 192),
        ("fire8", 64, 256, 256), ("fire9", 64, 256, 256), ("fire10", 96, 384, 384),
        ("fire11", 96, 384, 384),
    ),
    "squeezedet+": (
        ("fire2", 96, 64, 64), ("fire3", 96, 64, 64), ("fire4", 192, 128, 128),
        ("fire5", 192, 128, 128), ("fire6", 288, 192, 192), ("fire7", 288, 192, 192),
        ("fire8", 384, 256, 256), ("fire9", 384, 256, 256), ("fire10", 384, 256, 256),
        ("fire11", 384, 256, 256),
    ),
}  # fmt: skip
POOL_AFTER = {"squeezedet": ("conv1", "fire3", "fire5"), "squeezedet+": ("conv1", "fire4", "fire8")}
CONV1 = {"squeezedet": (3, 64, "same"), "squeezedet+": (7, 96, "valid")}  # kernel, filters, padding


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to build a SqueezeDet graph and decode its output.

    input_size: (W, H) of the network input in pixels.
    anchor_shapes: K (w, h) pairs in network-input pixels.
    """

    variant: str = "squeezedet"
    class_names: tuple[str, ...] = KITTI_CLASSES
    anchor_shapes: tuple[tuple[float, float], ...] = KITTI_ANCHOR_SHAPES
    convdet_kernel: int = 3
    input_size: tuple[int, int] = KITTI_INPUT_SIZE
    bgr_means: tuple[float, float, float] = BGR_MEANS
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def anchors_per_cell(self) -> int:
        return len(self.anchor_shapes)

    @property
    def convdet_outputs(self) -> int:
        return self.anchors_per_cell * (self.num_classes + 5)

    @property
    def grid_size(self) -> tuple[int, int]:
        """(W, H) of the ConvDet output grid for this input size."""
        return tuple(_grid_extent(n, self.variant) for n in self.input_size)  # type: ignore[return-value]

    @property
    def num_anchors(self) -> int:
        gw, gh = self.grid_size
        return gw * gh * self.anchors_per_cell

    def with_input_size(self, input_size: tuple[int, int], scale_anchors: bool = True) -> ArchSpec:
        """The same network run at another input size; anchors scale with it."""
        w, h = (int(v) for v in input_size)
        lo, hi = INPUT_SIDE_RANGE
        if not (lo <= w <= hi and lo <= h <= hi):
            raise InputError(f"input size {w}x{h} is out of range ({lo}..{hi} per side)")
        anchors = self.anchor_shapes
        if scale_anchors:
            sx, sy = w / self.input_size[0], h / self.input_size[1]
            anchors = tuple((aw * sx, ah * sy) for aw, ah in anchors)
        return replace(self, input_size=(w, h), anchor_shapes=anchors)

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "classes": list(self.class_names),
            "anchor_shapes": [list(a) for a in self.anchor_shapes],
            "convdet_kernel": self.convdet_kernel,
            "input_size": list(self.input_size),
        }


def _grid_extent(n: int, variant: str) -> int:
    if variant == "squeezedet":  # conv1 stride 2 and three stride-2 pools, all SAME
        for _ in range(4):
            n = math.ceil(n / 2)
        return n
    n = (n - 7) // 2 + 1  # conv1 7x7/2 VALID
    for _ in range(3):  # pools 3x3/2 VALID
        n = (n - 3) // 2 + 1
    return n


def layer_names(variant: str) -> list[str]:
    """Official layer names in forward order, e.g. 'conv1', 'fire2/squeeze1x1', 'conv12'."""
    names = ["conv1"]
    for fire, *_ in FIRES[variant]:
        names += [f"{fire}/squeeze1x1", f"{fire}/expand1x1", f"{fire}/expand3x3"]
    return names + ["conv12"]


def expected_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Official tensor name -> HWIO kernel or bias shape for a spec."""
    k1, f1, _ = CONV1[spec.variant]
    shapes: dict[str, tuple[int, ...]] = {"conv1/kernels": (k1, k1, 3, f1), "conv1/biases": (f1,)}
    channels = f1
    for fire, s, e1, e3 in FIRES[spec.variant]:
        for sub, k, cin, cout in (
            ("squeeze1x1", 1, channels, s), ("expand1x1", 1, s, e1), ("expand3x3", 3, s, e3),
        ):  # fmt: skip
            shapes[f"{fire}/{sub}/kernels"] = (k, k, cin, cout)
            shapes[f"{fire}/{sub}/biases"] = (cout,)
        channels = e1 + e3
    k = spec.convdet_kernel
    shapes["conv12/kernels"] = (k, k, channels, spec.convdet_outputs)
    shapes["conv12/biases"] = (spec.convdet_outputs,)
    return shapes


def _detect_variant(shapes: Mapping[str, tuple[int, ...]], source: str) -> str:
    conv1 = tuple(shapes.get("conv1/kernels", ()))
    for variant, (k, f, _) in CONV1.items():
        if conv1 == (k, k, 3, f):
            return variant
    raise InputError(
        f"conv1/kernels has shape {list(conv1)}, which is neither SqueezeDet nor SqueezeDet+",
        source,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sidecar_size(value: object, source: str) -> tuple[int, int]:
    lo, hi = INPUT_SIDE_RANGE
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise InputError(f"sidecar input_size must be [W, H], two integers; got {value!r}", source)
    w, h = value
    if not (lo <= w <= hi and lo <= h <= hi):
        raise InputError(
            f"sidecar input_size {w}x{h} is out of range ({lo}..{hi} per side)", source
        )
    return w, h


def _sidecar_classes(value: object, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(
            f"sidecar classes must be a non-empty list of names; got {value!r}", source
        )
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"sidecar classes must be non-empty strings; got {value!r}", source)
    seen: set[str] = set()
    for name in value:
        if name.lower() in seen:
            raise InputError(f"sidecar classes name {name!r} twice (case is ignored)", source)
        seen.add(name.lower())
    return tuple(value)


def _sidecar_anchors(value: object, source: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not value:
        raise InputError(
            f"sidecar anchor_shapes must be a non-empty list of [w, h]; got {value!r}", source
        )
    for i, pair in enumerate(value):
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(_is_number(v) and math.isfinite(v) and v > 0 for v in pair)
        ):
            raise InputError(
                f"sidecar anchor_shapes[{i}] must be [w, h], two positive finite numbers; "
                f"got {pair!r}",
                source,
            )
    return tuple((float(w), float(h)) for w, h in value)


def validate_sidecar(sidecar: Mapping, source: str = "sidecar") -> dict:
    """Check a sidecar's values; return {key: value} for the keys it gives (null = not given).

    input_size: (W, H) ints within INPUT_SIDE_RANGE; classes: non-empty tuple of unique
    (case-insensitively) non-empty strings; anchor_shapes: non-empty tuple of positive
    finite (w, h).  Other keys are kept by the caller and not checked here.
    Raises InputError naming ``source`` (the sidecar's path) on the first bad value.
    """
    checks = {
        "input_size": _sidecar_size,
        "classes": _sidecar_classes,
        "anchor_shapes": _sidecar_anchors,
    }
    return {
        key: check(sidecar[key], source)
        for key, check in checks.items()
        if sidecar.get(key) is not None
    }


def _split_outputs(outputs: int, given: Mapping, source: str, side: str) -> tuple[tuple, tuple]:
    """(classes, anchor shapes) for conv12's output count; ``given`` is a validated sidecar."""
    classes = given.get("classes", ())
    anchors = given.get("anchor_shapes", ())
    if classes and anchors and len(anchors) * (len(classes) + 5) != outputs:
        raise InputError(
            f"conv12 has {outputs} outputs but the sidecar's {len(anchors)} anchors and "
            f"{len(classes)} classes need {len(anchors) * (len(classes) + 5)}",
            side,
        )
    if not classes:
        k = len(anchors) or len(KITTI_ANCHOR_SHAPES)
        if outputs % k or outputs // k - 5 < 1:
            raise InputError(
                f"conv12 has {outputs} outputs, not a multiple of {k} anchors x (classes + 5)",
                side if anchors else source,
            )
        c = outputs // k - 5
        classes = KITTI_CLASSES if c == 3 else tuple(f"class{i}" for i in range(c))
    if not anchors:
        c = len(classes)
        if outputs % (c + 5):
            raise InputError(
                f"conv12 has {outputs} outputs, not a multiple of {len(classes)} classes + 5",
                side if given.get("classes") else source,
            )
        k = outputs // (c + 5)
        if k != len(KITTI_ANCHOR_SHAPES):
            raise InputError(
                f"conv12 implies {k} anchors per cell: give their shapes in a JSON sidecar", source
            )
        anchors = KITTI_ANCHOR_SHAPES
    return classes, anchors


def infer_spec(
    shapes: Mapping[str, tuple[int, ...]],
    sidecar: Mapping | None = None,
    source: str = "checkpoint",
    sidecar_source: str | None = None,
) -> ArchSpec:
    """Infer the architecture from tensor shapes (official names) plus an optional sidecar.

    sidecar keys: ``input_size`` [W, H], ``classes`` [names], ``anchor_shapes`` [[w, h], ...],
    all optional.  Without ``input_size`` the official 1248x384 applies; without
    ``anchor_shapes`` the official anchors, scaled to the input size.  Errors about the
    checkpoint name ``source``; errors about sidecar values name ``sidecar_source``.
    """
    side = sidecar_source or source
    given = validate_sidecar(sidecar or {}, side)
    variant = _detect_variant(shapes, source)
    conv12 = tuple(shapes.get("conv12/kernels", ()))
    if len(conv12) != 4 or conv12[0] != conv12[1] or conv12[0] not in (1, 3):
        raise InputError(
            f"conv12/kernels has shape {list(conv12)}; expected [1|3, 1|3, C, K*(classes+5)]",
            source,
        )
    classes, anchors = _split_outputs(conv12[3], given, source, side)
    spec = ArchSpec(
        variant=variant, class_names=classes, anchor_shapes=anchors, convdet_kernel=conv12[0]
    )
    size = given.get("input_size", KITTI_INPUT_SIZE)
    spec = spec.with_input_size(size, scale_anchors="anchor_shapes" not in given)
    check_shapes(spec, shapes, source)
    return spec


def check_shapes(spec: ArchSpec, shapes: Mapping[str, tuple[int, ...]], source: str) -> None:
    """Raise InputError naming the first missing or mis-shaped tensor."""
    for name, shape in expected_shapes(spec).items():
        if name not in shapes:
            raise InputError(f"tensor {name} is missing", source)
        if tuple(shapes[name]) != shape:
            raise InputError(
                f"tensor {name} has shape {list(shapes[name])}, expected {list(shape)}", source
            )


def count_parameters(weights: Mapping[str, np.ndarray]) -> int:
    return int(sum(int(np.prod(v.shape)) for v in weights.values()))
