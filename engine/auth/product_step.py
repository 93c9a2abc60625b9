"""The product step of the flow: the product model's recommendation for the identified member,
kept between attempts while its inputs are unchanged, and held back until the voice is verified.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.auth.outcomes import ProductStepResult, StepOutcome, step_outcome
from engine.auth.words import Step, StepStatus
from engine.core.errors import MmauthError
from engine.core.workspace import Workspace

if TYPE_CHECKING:
    from engine.models.loading import ModelBundle


class ProductRecommendations:
    """The product step of one Authenticator, with its cache of recommendations."""

    def __init__(self, workspace: Workspace, bundle: Callable[[], ModelBundle]) -> None:
        self.workspace = workspace
        self._bundle = bundle
        self._recommendations: dict[tuple[Any, ...], Any] = {}

    def step(self, member: str) -> tuple[StepOutcome, ProductStepResult]:
        from engine.models.recommend import recommend_for_member

        started = time.perf_counter()
        try:
            recommendation = self._recommendation(member, recommend_for_member)
        except MmauthError as error:
            # A member without a customer link can still authenticate; there is just nothing
            # to recommend.
            message = f"no recommendation: {error.message}"
            return step_outcome(
                Step.PRODUCT, StepStatus.SKIPPED, started, message
            ), ProductStepResult()
        outcome = step_outcome(
            Step.PRODUCT,
            StepStatus.PASSED,
            started,
            "recommendation ready, held back until the voice is verified",
        )
        return outcome, ProductStepResult(recommendation.category, float(recommendation.confidence))

    def _recommendation(self, member: str, recommend: Callable[..., Any]) -> Any:
        """The product model's answer for a member, kept while the model, members.csv and the
        merged dataset are unchanged (reading both tables costs more than the prediction)."""
        key = (
            member,
            id(self._bundle().product),
            *(_signature(p) for p in (self.workspace.members_file, self.workspace.merged_dataset)),
        )
        if key not in self._recommendations:
            self._recommendations = {
                k: v for k, v in self._recommendations.items() if k[1:] == key[1:]
            }
            self._recommendations[key] = recommend(self.workspace, self._bundle(), member)
        return self._recommendations[key]


def _signature(path: Path) -> tuple[int, int] | None:
    """(size, modification time) of a file, None when absent: changes when it is rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
