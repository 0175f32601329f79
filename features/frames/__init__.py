"""Point-in-time feature frames: the declarative spec, its compiler and the builder."""

from features.frames.builder import Population, build_features, collect_features
from features.frames.definitions import FeatureSpec, load_spec, model_inputs

__all__ = [
    "FeatureSpec",
    "Population",
    "build_features",
    "collect_features",
    "load_spec",
    "model_inputs",
]
