"""streamal: streaming active learning next to Kafka."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streamal")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from streamal.core import (  # noqa: E402
    ActiveLearner,
    BudgetManager,
    Decision,
    PseudoLabels,
    Strategy,
    budget_managers,
    models,
    strategies,
)

__all__ = [
    "ActiveLearner",
    "BudgetManager",
    "Decision",
    "PseudoLabels",
    "Strategy",
    "__version__",
    "budget_managers",
    "models",
    "strategies",
]
