"""Commands of a disclosure."""

from __future__ import annotations

from typing import ClassVar, Literal

from schemas.commands import Command
from schemas.common import Id


class PublishDisclosure(Command):
    """Publish a settled period's disclosure: its document's hash goes on the log."""

    NAME: ClassVar[str] = "publish_disclosure"
    ROLE: ClassVar[str] = "operator"
    command: Literal["publish_disclosure"] = "publish_disclosure"
    period: Id
