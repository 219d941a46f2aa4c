"""Which settings a result was computed with: result tags, staleness and export provenance.

Every result view (AP table, PR curves, sweep plot, sensitivity column) keeps the
:class:`ResultTag` of its computation: the compared configs (short labels, e.g.
"4 bits · channel · nearest"), the images, split and protocol, the checkpoint.  A
view is *stale* when the settings it would be computed with now differ from the
tag's ``key``; it then greys out and says "settings changed".  The tag is also
what exported files record (:func:`provenance`).  No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from squeezelens.engine.quant.labels import SEP, short_label

STALE_TEXT = "settings changed — {action} again"


@dataclass(frozen=True)
class ResultTag:
    """The settings one result was computed with (``key``: compared for staleness)."""

    ref_label: str  # "Float" / "A"
    other_label: str  # "Quantized" / "INT8" / "B"
    ref_config: str  # short labels ("float", "4 bits · channel · nearest")
    other_config: str
    images: int
    split: str
    kitti_root: str
    protocol: str
    checkpoint: str
    sha256: str
    key: tuple = field(default=(), compare=False)
    configs: dict = field(default_factory=dict, compare=False)  # label -> config dict or None
    summary: str = ""  # what was computed, when not "reference vs other" (a sweep's curves)
    compute: str = field(default="", compare=False)  # where it ran ("2 local Ray workers")

    def caption(self) -> str:
        """'Float (float) vs Quantized (4 bits · global · nearest) · 45 images of val · official'."""
        models = f"{self.ref_label} ({self.ref_config}) vs {self.other_label} ({self.other_config})"
        return SEP.join([self.summary or models, self.scope()])

    def scope(self) -> str:
        """'45 images of val · official protocol'."""
        return f"{self.images} images of {self.split}{SEP}{self.protocol} protocol"


def model_key(state: Any) -> tuple:
    """The loaded model and open images (a change makes every result stale)."""
    model, ds = state.model, state.dataset
    return (
        model and (model.checkpoint_path, model.sha256),
        ds and (str(ds.root), ds.split, len(ds)),
    )


def int8_on(state: Any) -> bool:
    """Whether the compared model is the TFLite INT8 one (float-vs-quantized mode only)."""
    return bool(state.int8 and state.mode == "float")


def eval_key(state: Any, protocol: str) -> tuple:
    """What an evaluation started now would be computed with."""
    return (*model_key(state), state.mode, state.ref_config, state.other_config,
            int8_on(state), protocol)  # fmt: skip


def grids_of(config: Any) -> Any:
    """``config`` with bits and per-layer bits set aside: a sensitivity measured on it holds
    for every width it tested (see gui.facts.same_grids)."""
    return None if config is None else config.replace(bits=8, overrides=())


def sensitivity_key(state: Any, protocol: str) -> tuple:
    """What the layer sensitivity shown now was (or would be) measured with."""
    return (*model_key(state), grids_of(state.other_config), protocol)


def result_tag(state: Any, key: tuple, protocol: str, images: int | None = None) -> ResultTag:
    """The tag of a result computed now for the state's compared configs."""
    model, ds = state.model, state.dataset
    ref_cfg = short_label(state.ref_config)
    other_cfg = short_label(state.other_config, int8=int8_on(state))
    configs = {
        state.ref_label: _dict(state.ref_config),
        state.other_label: _dict(state.other_config),
    }
    return ResultTag(state.ref_label, state.other_label, ref_cfg, other_cfg,
                     len(ds) if images is None and ds is not None else int(images or 0),
                     ds.split if ds is not None else "", str(ds.root) if ds is not None else "",
                     protocol, model.checkpoint_path if model else "",
                     model.sha256 if model else "", key, configs)  # fmt: skip


def _dict(config: Any) -> dict | None:
    return None if config is None else config.to_dict()


def stale_text(action: str) -> str:
    """'settings changed — Evaluate again'."""
    return STALE_TEXT.format(action=action)


def provenance(tag: ResultTag, float_map: float | None = None, **extra: Any) -> dict:
    """What an exported file records about its numbers (JSON-ready)."""
    from squeezelens.engine.provenance import versions

    out = {
        "checkpoint": {"path": tag.checkpoint or None, "sha256": tag.sha256 or None},
        "kitti_root": tag.kitti_root,
        "split": tag.split,
        "images": tag.images,
        "protocol": tag.protocol,
        "models": {tag.ref_label: tag.ref_config, tag.other_label: tag.other_config},
        "configs": tag.configs,
        "float_map_r11": float_map,
        "versions": versions(),
    }
    if tag.compute:
        out["computed_on"] = tag.compute
    out.update(extra)
    return out


def provenance_columns(tag: ResultTag, float_map: float | None) -> dict:
    """The same facts as flat CSV columns (repeated on every row: each row stands alone)."""
    from squeezelens.engine.provenance import versions

    return {
        "checkpoint": tag.checkpoint,
        "checkpoint_sha256": tag.sha256,
        "split": tag.split,
        "images": tag.images,
        "protocol": tag.protocol,
        "float_map_r11": "" if float_map is None else f"{float_map:.6f}",
        "squeezelens_version": versions().get("squeezelens", ""),
    }


def caption_line(tag: ResultTag, float_map: float | None = None) -> str:
    """One line for exported plots: checkpoint hash, images, protocol, float, version."""
    from squeezelens.engine.provenance import versions

    parts = [f"checkpoint {tag.sha256[:12] if tag.sha256 else 'in memory'}", tag.scope()]
    if float_map is not None:
        parts.append(f"float mAP R11 {float_map:.4f}")
    version = versions().get("squeezelens")
    if version:
        parts.append(f"squeezelens {version}")
    return SEP.join(parts)
