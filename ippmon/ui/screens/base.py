"""What every ippmon screen shares."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.screen import Screen

ResultType = TypeVar("ResultType")


class StepScreen(Screen[ResultType], Generic[ResultType]):
    """A screen that ends by handing a result to the app's router (`push_screen` callback)."""

    def finish(self, result: ResultType) -> None:
        """Dismiss with `result`, first closing any dialog (help) opened on top of this screen."""
        if not self.is_attached:
            return
        if self.app.screen is not self:
            self.pop_until_active()
        self.dismiss(result)
