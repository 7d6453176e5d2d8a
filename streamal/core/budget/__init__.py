"""Budget managers (adaptive thresholds), registered by name in :data:`budget_managers`."""

from streamal.core.budget.base import BudgetManager, budget_managers
from streamal.core.budget.fixed import Fixed
from streamal.core.budget.guard import BudgetGuard
from streamal.core.budget.quantile import Quantile
from streamal.core.budget.split import Split
from streamal.core.budget.variable_uncertainty import VariableUncertainty

__all__ = [
    "BudgetGuard",
    "BudgetManager",
    "Fixed",
    "Quantile",
    "Split",
    "VariableUncertainty",
    "budget_managers",
]
