"""OneRoster 1.1 CSV bundles: parsing and validation (pure), and the demo roster generator.

The generator lives in `.generate` and is not imported here, so that
`python -m services.directory.roster.generate` runs it without a double import.
"""

from .errors import MAX_ISSUES, RosterError, RosterIssue
from .model import (
    DEFAULT_TITLES,
    Bundle,
    Class,
    Course,
    Enrollment,
    ExternalRef,
    Org,
    PlatformRole,
    Project,
    ProjectMember,
    User,
    platform_role,
)
from .parse import MAX_UNCOMPRESSED_BYTES, load_bundle

__all__ = [
    "DEFAULT_TITLES",
    "MAX_ISSUES",
    "MAX_UNCOMPRESSED_BYTES",
    "Bundle",
    "Class",
    "Course",
    "Enrollment",
    "ExternalRef",
    "Org",
    "PlatformRole",
    "Project",
    "ProjectMember",
    "RosterError",
    "RosterIssue",
    "User",
    "load_bundle",
    "platform_role",
]
