"""The active-learning core: pure Python, River and numpy; never Kafka, pydantic or prometheus."""

from streamal.core.budget import BudgetManager, budget_managers
from streamal.core.learner import ActiveLearner, Decision
from streamal.core.models import models
from streamal.core.pseudo import PseudoLabels
from streamal.core.strategies import Strategy, strategies

__all__ = [
    "ActiveLearner",
    "BudgetManager",
    "Decision",
    "PseudoLabels",
    "Strategy",
    "budget_managers",
    "models",
    "strategies",
]
