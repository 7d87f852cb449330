"""Named objectives that stand in for accuracy where none exists: size counts and training-free proxies.

Every objective is maximized and computed on a materialized network; results carry ``objective:<name>``,
never "accuracy".
"""

from hwdiffnas.objectives.base import Objective, get_objective, objective_names, register_objective

__all__ = ["Objective", "get_objective", "objective_names", "register_objective"]
