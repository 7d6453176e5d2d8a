"""Query strategies, registered by name in :data:`strategies`."""

from streamal.core.strategies.base import Strategy, strategies
from streamal.core.strategies.committee import Committee, VarianceReduction
from streamal.core.strategies.density import DensityWeighted
from streamal.core.strategies.diversity import GSx, IGS
from streamal.core.strategies.expected import ExpectedErrorReduction, ExpectedModelChange
from streamal.core.strategies.model_change import EMCM
from streamal.core.strategies.uncertainty import Entropy, LeastConfidence, Margin, Random

__all__ = [
    "Committee",
    "DensityWeighted",
    "EMCM",
    "Entropy",
    "ExpectedErrorReduction",
    "ExpectedModelChange",
    "GSx",
    "IGS",
    "LeastConfidence",
    "Margin",
    "Random",
    "Strategy",
    "VarianceReduction",
    "strategies",
]
