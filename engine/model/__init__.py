"""SqueezeDet architectures: a spec inferred from tensor shapes and a Keras builder."""

from squeezelens.engine.model.spec import ArchSpec, infer_spec, layer_names

__all__ = ["ArchSpec", "infer_spec", "layer_names"]
