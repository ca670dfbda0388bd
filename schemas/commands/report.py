"""Commands of a regulator's report."""

from __future__ import annotations

from typing import ClassVar, Literal

from schemas.commands import Command
from schemas.common import IsoDate


class PublishReport(Command):
    """A regulator publishes its report over [since, until): the document's hash goes on the log, signed by it."""

    NAME: ClassVar[str] = "publish_report"
    ROLE: ClassVar[str] = "regulator"
    command: Literal["publish_report"] = "publish_report"
    since: IsoDate
    until: IsoDate
