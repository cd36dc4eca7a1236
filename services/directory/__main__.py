"""`python -m services.directory`: the directory service process; `... import <bundle>` loads a roster."""

import sys

from services.directory import DEFINITION, MIGRATIONS
from shared.config import Settings
from shared.service import main


def _import(path: str) -> None:
    from pathlib import Path

    from services.directory.handlers import import_roster
    from shared.db import migrate
    from shared.errors import AppError

    settings = Settings.from_env()
    url = settings.database_url("directory")
    migrate(url, MIGRATIONS)
    try:
        counts = import_roster(url, Path(path))
    except AppError as exc:
        print(exc.message, file=sys.stderr)
        for issue in exc.details.get("errors", []):
            print(
                f"  {issue['file']}, line {issue['line']}, column {issue['column']}: {issue['message']}",
                file=sys.stderr,
            )
        raise SystemExit(1) from None
    for kind, c in counts.items():
        print(f"{kind}: {c['created']} created, {c['updated']} updated, {c['deleted']} deleted")


if len(sys.argv) >= 3 and sys.argv[1] == "import":
    _import(sys.argv[2])
else:
    main(DEFINITION)
