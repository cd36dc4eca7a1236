"""Why a roster bundle was refused: every problem found, with the place to fix it."""

from __future__ import annotations

from dataclasses import dataclass

# A school fixing an export wants to see many problems at once, but a badly broken file
# would otherwise yield one issue per row; past this many the rest is noise.
MAX_ISSUES = 100


@dataclass(frozen=True, slots=True)
class RosterIssue:
    """One problem. `line` is the 1-based physical line (header = 1); 0 = the whole file."""

    file: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line > 0:
            place += f", line {self.line}"
        if self.column:
            place += f", column {self.column}"
        return f"{place}: {self.message}"


class RosterError(ValueError):
    """The bundle is refused as a whole; `errors` lists what to fix (at most MAX_ISSUES)."""

    def __init__(self, errors: list[RosterIssue], *, truncated: bool = False) -> None:
        self.errors = list(errors)
        self.truncated = truncated
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.errors)
        head = f"roster bundle refused: {count} issue{'s' if count != 1 else ''}"
        if self.truncated:
            head += f" (stopped after {count}; there may be more)"
        return "\n  ".join([head, *(str(issue) for issue in self.errors)])
