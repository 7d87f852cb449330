"""Named objectives that stand in for accuracy where none exists: size counts and training-free proxies.

Every objective is maximized and computed on a materialized network; results carry ``objective:<name>``,
never "accuracy".
"""

from hwdiffnas.objectives.base import Objective
from hwdiffnas.plugins import Registry

objectives: Registry[Objective] = Registry("objective", "hwdiffnas.objectives", Objective, {
    "flops": "hwdiffnas.objectives.builtin:FlopsObjective",
    "params": "hwdiffnas.objectives.builtin:ParamsObjective",
    "synflow": "hwdiffnas.objectives.builtin:SynflowObjective",
    "naswot": "hwdiffnas.objectives.builtin:NaswotObjective",
    "zen": "hwdiffnas.objectives.builtin:ZenObjective",
})
"""The objectives: built-ins, entry points of the group ``hwdiffnas.objectives`` and registered ones."""


def register_objective(objective: Objective) -> None:
    """Make ``objective`` available by name (replaces one of the same name)."""
    if not objective.name:
        raise ValueError("an objective needs a name")
    objectives.register(objective.name, lambda: objective)


def objective_names() -> list[str]:
    """Names of the known objectives."""
    return objectives.names()


def get_objective(name: str) -> Objective:
    """The objective ``name``; unknown names list the known ones."""
    return objectives.create(name)


__all__ = ["Objective", "get_objective", "objective_names", "register_objective"]
