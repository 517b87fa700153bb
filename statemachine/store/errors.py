"""The one error a store raises for anything its database does wrong."""

from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(Exception):
    """The database could not do what was asked: unreachable, locked, corrupt, too new, ...

    `doing` says what the store was doing ("applying 3 event(s)", "opening the store"), `cause`
    is the database's own exception when there is one. Nothing was committed by the failed call.
    """

    def __init__(self, doing: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(f"{doing}: {message}")
        self.doing = doing
        self.message = message
        self.cause = cause
