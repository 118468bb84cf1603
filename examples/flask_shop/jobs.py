"""The report job, PHP style: ``perform(self)`` reads ``self.args``; its return value becomes
the status ``result`` (resque/php-resque's field)."""

from __future__ import annotations

from typing import Any

from resque_compat import job


@job("App\\Jobs\\BuildReport")
class BuildReport:
    args: dict[str, Any]

    def perform(self) -> dict[str, Any]:
        return {"month": self.args["month"], "rows": 0}
