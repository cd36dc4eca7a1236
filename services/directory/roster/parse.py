"""Read and validate a OneRoster 1.1 CSV bundle (a folder, a .zip file or zip bytes).

Pure: reads files, writes nothing, talks to nobody. Everything wrong with the bundle is
collected (up to MAX_ISSUES) and raised as one RosterError, so a school fixes its export
in one round trip instead of one error at a time.
"""

from __future__ import annotations

import csv
import gc
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Protocol, cast

from .errors import MAX_ISSUES, RosterError, RosterIssue
from .model import (
    DEFAULT_TITLES,
    ONEROSTER_ROLES,
    ORG_TYPES,
    Bundle,
    Class,
    Course,
    Enrollment,
    ExternalRef,
    FileKind,
    FileMode,
    OneRosterRole,
    Org,
    OrgType,
    Project,
    ProjectMember,
    User,
    platform_role,
)

# Zip bomb guard: the real roster of a large district is tens of MB uncompressed.
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024

MANIFEST = "manifest.csv"
CORE_KINDS: tuple[FileKind, ...] = ("orgs", "users", "courses", "classes", "enrollments")
# Our extension; bulk or absent only, since project members have no sourcedId to delete by.
EXTENSION_KINDS: tuple[FileKind, ...] = ("projects", "projectMembers")
ALL_KINDS: tuple[FileKind, ...] = CORE_KINDS + EXTENSION_KINDS
_NOUN: dict[str, str] = {"orgs": "org", "users": "user", "courses": "course", "classes": "class", "projects": "project"}
_ROLE_BY_NAME: dict[str, OneRosterRole] = {role: cast(OneRosterRole, role) for role in ONEROSTER_ROLES}
_BUNDLE = "(bundle)"
_DRIVE = re.compile(r"^[A-Za-z]:")


def load_bundle(source: Path | bytes, *, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> Bundle:
    """Parse and validate a bundle; raise RosterError listing every problem found."""
    issues = _Issues()
    with _gc_paused():
        files = _open_source(source, max_bytes, issues)
        try:
            modes = _read_manifest(files, issues)
            bundle = _Parser(files, modes, issues).run()
        finally:
            files.close()
    if issues.items:
        raise RosterError(issues.items)
    return bundle


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hundreds of thousands of new rows set off full garbage collections that find nothing
    (rows hold no cycles); pausing the collector cuts a large parse by about a third."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- issues -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Issues:
    items: list[RosterIssue] = field(default_factory=list)

    def add(self, file: str, line: int, column: str | None, message: str) -> None:
        self.items.append(RosterIssue(file, line, column, message))
        if len(self.items) >= MAX_ISSUES:
            raise RosterError(self.items, truncated=True)

    def fatal(self, file: str, line: int, column: str | None, message: str) -> RosterError:
        """For problems after which reading on makes no sense (not a zip, a zip bomb...)."""
        self.items.append(RosterIssue(file, line, column, message))
        return RosterError(self.items)


# --- where the bytes come from ------------------------------------------------------------


class _Files(Protocol):
    def read(self, name: str) -> bytes | None: ...

    def close(self) -> None: ...


class _LineReader(Protocol):
    """csv.reader's object: rows plus the physical line count, for line numbers in issues."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


@dataclass(slots=True)
class _Budget:
    """Counts bytes actually read: a zip's declared sizes can lie."""

    remaining: int
    issues: _Issues

    def read(self, stream: IO[bytes], name: str) -> bytes:
        data = stream.read(self.remaining + 1)
        if len(data) > self.remaining:
            raise self.issues.fatal(name, 0, None, _too_big(self.remaining))
        self.remaining -= len(data)
        return data


def _too_big(limit: int) -> str:
    return f"bundle is larger than {limit // (1024 * 1024)} MB uncompressed; refused"


@dataclass(slots=True)
class _FolderFiles:
    root: Path
    budget: _Budget

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        if not path.is_file():
            return None
        with path.open("rb") as stream:
            return self.budget.read(stream, name)

    def close(self) -> None:
        pass


@dataclass(slots=True)
class _ZipFiles:
    archive: zipfile.ZipFile
    prefix: str
    budget: _Budget

    def read(self, name: str) -> bytes | None:
        try:
            info = self.archive.getinfo(self.prefix + name)
        except KeyError:
            return None
        try:
            with self.archive.open(info) as stream:
                return self.budget.read(stream, name)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            # RuntimeError: encrypted member; NotImplementedError: unknown compression.
            raise self.budget.issues.fatal(name, 0, None, f"cannot be read from the zip archive ({exc})") from exc

    def close(self) -> None:
        self.archive.close()


def _open_source(source: Path | bytes, max_bytes: int, issues: _Issues) -> _Files:
    budget = _Budget(max_bytes, issues)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_zip(io.BytesIO(bytes(source)), budget, issues)
    path = Path(source)
    if path.is_dir():
        return _FolderFiles(path, budget)
    if path.is_file():
        return _open_zip(path, budget, issues)
    raise issues.fatal(_BUNDLE, 0, None, f"no such folder or zip file: {path}")


def _open_zip(source: Path | IO[bytes], budget: _Budget, issues: _Issues) -> _ZipFiles:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise issues.fatal(_BUNDLE, 0, None, f"not a zip archive ({exc})") from exc
    try:
        _check_members(archive.infolist(), budget, issues)
    except RosterError:
        archive.close()
        raise
    return _ZipFiles(archive, _manifest_prefix(archive.infolist()), budget)


def _check_members(members: list[zipfile.ZipInfo], budget: _Budget, issues: _Issues) -> None:
    for info in members:
        if _unsafe_name(info.filename):
            issues.add(info.filename, 0, None, "unsafe path in zip archive; the bundle is refused")
    if issues.items:
        raise RosterError(issues.items)
    # Declared sizes first, a cheap early refusal; _Budget still counts what is really read.
    if sum(info.file_size for info in members) > budget.remaining:
        raise issues.fatal(_BUNDLE, 0, None, _too_big(budget.remaining))


def _unsafe_name(name: str) -> bool:
    # We never extract, but a member like ../x or /etc/x marks a crafted or broken archive.
    parts = name.split("/")
    return name.startswith("/") or "\\" in name or "\x00" in name or bool(_DRIVE.match(name)) or ".." in parts


def _manifest_prefix(members: list[zipfile.ZipInfo]) -> str:
    """Exports often zip a folder: accept the files under the shallowest manifest.csv."""
    found = [PurePosixPath(m.filename) for m in members if PurePosixPath(m.filename).name == MANIFEST]
    if not found:
        return ""
    parent = min(found, key=lambda p: (len(p.parts), str(p))).parent
    return "" if str(parent) == "." else f"{parent}/"


# --- CSV ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Table:
    file: str
    mode: FileMode
    # Canonical (OneRoster-spelled) column name -> index; optional columns may be absent.
    index: dict[str, int]
    reader: _LineReader
    width: int
    issues: _Issues
    # Looked up once here rather than per row: these are read on every row.
    status_at: int | None = field(init=False)
    modified_at: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.status_at = self.index.get("status")
        self.modified_at = self.index.get("dateLastModified")

    def col(self, name: str) -> int | None:
        return self.index.get(name)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first physical line of the row, padded fields), skipping blank lines."""
        reader = self.reader
        last = reader.line_num
        try:
            for row in reader:
                start, last = last + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) < self.width:
                    row.extend([""] * (self.width - len(row)))
                yield start, row
        except csv.Error as exc:
            self.issues.add(self.file, last + 1, None, f"not valid CSV ({exc})")


def _decode(file: str, data: bytes, issues: _Issues) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        issues.add(file, line, None, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8")
        return None


def _open_table(
    file: str, data: bytes, mode: FileMode, required: tuple[str, ...], optional: tuple[str, ...], issues: _Issues
) -> _Table | None:
    text = _decode(file, data, issues)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        issues.add(file, 1, None, f"not valid CSV ({exc})")
        return None
    if not header:
        issues.add(file, 1, None, "the file is empty; expected a header row")
        return None
    # Headers are matched case-insensitively: some SIS exports capitalise them.
    seen: dict[str, int] = {}
    for position, name in enumerate(header):
        seen.setdefault(name.strip().lower(), position)
    if mode == "delta":
        required = (*required, "status", "dateLastModified")
    missing = [name for name in required if name.lower() not in seen]
    for name in missing:
        issues.add(file, 1, name, f"missing required column {name}")
    if missing:
        return None
    index = {name: seen[name.lower()] for name in (*required, *optional) if name.lower() in seen}
    return _Table(file, mode, index, reader, len(header), issues)


# --- manifest -----------------------------------------------------------------------------


def _read_manifest(files: _Files, issues: _Issues) -> dict[FileKind, FileMode]:
    data = files.read(MANIFEST)
    if data is None:
        raise issues.fatal(MANIFEST, 0, None, "manifest.csv is missing; this is not a OneRoster bundle")
    table = _open_table(MANIFEST, data, "bulk", ("propertyName", "value"), (), issues)
    if table is None:
        raise RosterError(issues.items)
    props: dict[str, tuple[int, str]] = {}
    name_at, value_at = table.index["propertyName"], table.index["value"]
    for line, row in table.rows():
        name = row[name_at].strip()
        if name in props:
            issues.add(MANIFEST, line, "propertyName", f"{name} is listed twice (first on line {props[name][0]})")
        props.setdefault(name, (line, row[value_at].strip()))
    _expect_version(props, "manifest.version", "1.0", issues)
    _expect_version(props, "oneroster.version", "1.1", issues)
    return {kind: _file_mode(props, kind, issues) for kind in ALL_KINDS}


def _expect_version(props: dict[str, tuple[int, str]], name: str, wanted: str, issues: _Issues) -> None:
    line, value = props.get(name, (0, ""))
    if value != wanted:
        found = f"'{value}'" if line else "missing"
        issues.add(MANIFEST, line, "value" if line else None, f"{name} must be {wanted} ({found})")


def _file_mode(props: dict[str, tuple[int, str]], kind: FileKind, issues: _Issues) -> FileMode:
    name = f"file.{kind}"
    if name not in props:
        if kind in CORE_KINDS:
            issues.add(MANIFEST, 0, None, f"{name} is missing (expected bulk, delta or absent)")
        return "absent"
    line, value = props[name]
    allowed = ("bulk", "delta", "absent") if kind in CORE_KINDS else ("bulk", "absent")
    if value.lower() not in allowed:
        issues.add(MANIFEST, line, "value", f"{name} must be one of {', '.join(allowed)}, not '{value}'")
        return "absent"
    return cast(FileMode, value.lower())


# --- rows ---------------------------------------------------------------------------------


class _Parser:
    """Reads the files in dependency order, so each reference is checked against ids already read."""

    def __init__(self, files: _Files, modes: dict[FileKind, FileMode], issues: _Issues) -> None:
        self.files = files
        self.modes = modes
        self.issues = issues
        self.active: dict[str, set[str]] = {kind: set() for kind in ALL_KINDS}
        self.deleted: dict[str, set[str]] = {kind: set() for kind in ALL_KINDS}
        # Rows already reported as bad (or files unreadable): references to them would only
        # repeat the same problem, so they are not reported again.
        self.rejected: dict[str, set[str]] = {kind: set() for kind in ALL_KINDS}
        self.broken: set[str] = set()
        self.external: list[ExternalRef] = []

    def run(self) -> Bundle:
        orgs = self._orgs()
        users = self._users()
        courses = self._courses()
        classes = self._classes()
        enrollments = self._enrollments()
        projects = self._projects()
        members = self._project_members()
        return Bundle(
            orgs=tuple(orgs),
            users=tuple(users),
            courses=tuple(courses),
            classes=tuple(classes),
            enrollments=tuple(enrollments),
            projects=tuple(projects),
            project_members=tuple(members),
            mode="delta" if "delta" in self.modes.values() else "bulk",
            deleted={kind: frozenset(self.deleted[kind]) for kind in ALL_KINDS if kind != "projectMembers"},
            external_refs=tuple(self.external),
            file_modes=dict(self.modes),
        )

    # -- shared helpers --

    def _table(self, kind: FileKind, required: tuple[str, ...], optional: tuple[str, ...]) -> _Table | None:
        mode = self.modes[kind]
        if mode == "absent":
            return None
        file = f"{kind}.csv"
        data = self.files.read(file)
        if data is None:
            self.issues.add(file, 0, None, f"{file} is missing (manifest.csv lists file.{kind} as {mode})")
            table = None
        else:
            table = _open_table(file, data, mode, required, (*optional, "status", "dateLastModified"), self.issues)
        if table is None:
            self.broken.add(kind)
        return table

    def _head(
        self, table: _Table, kind: str, line: int, row: list[str], seen: dict[str, int]
    ) -> tuple[str, datetime | None] | None:
        """(sourcedId, dateLastModified) of an active row; None for a bad row or a tobedeleted one."""
        sourced_id = row[table.index["sourcedId"]].strip()
        if not sourced_id:
            self.issues.add(table.file, line, "sourcedId", "sourcedId is empty")
            return None
        if sourced_id in seen:
            message = f"duplicate sourcedId '{sourced_id}' (first on line {seen[sourced_id]})"
            self.issues.add(table.file, line, "sourcedId", message)
            return None
        seen[sourced_id] = line
        status = row[table.status_at].strip() if table.status_at is not None else ""
        stamp = row[table.modified_at].strip() if table.modified_at is not None else ""
        if not status and not stamp and table.mode == "bulk":
            return sourced_id, None  # the usual bulk row, kept fast
        deleted = self._status(table, line, status)
        modified = self._modified(table, line, stamp)
        if deleted is None:
            self.rejected[kind].add(sourced_id)
            return None
        if deleted:
            # A delta row deleting an id needs nothing but the id: other fields go unchecked.
            self.deleted[kind].add(sourced_id)
            return None
        return sourced_id, modified

    def _status(self, table: _Table, line: int, value: str) -> bool | None:
        """True for tobedeleted; None (reported) for a status this file may not carry."""
        status = value.lower()
        if status == "active" or (status == "" and table.mode == "bulk"):
            return False
        if status == "tobedeleted" and table.mode == "delta":
            return True
        if status == "tobedeleted":
            message = "tobedeleted is only allowed when manifest.csv lists the file as delta"
            self.issues.add(table.file, line, "status", message)
        else:
            self.issues.add(table.file, line, "status", f"status must be active or tobedeleted, not '{status}'")
        return None

    def _modified(self, table: _Table, line: int, value: str) -> datetime | None:
        if not value:
            if table.mode == "delta":
                self.issues.add(table.file, line, "dateLastModified", "dateLastModified is required in a delta file")
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.issues.add(table.file, line, "dateLastModified", f"not an ISO 8601 date-time: '{value}'")
            return None

    def _text(self, table: _Table, line: int, row: list[str], column: str) -> str:
        value = row[table.index[column]].strip()
        if not value:
            self.issues.add(table.file, line, column, f"{column} is empty")
        return value

    def _role(self, table: _Table, line: int, row: list[str]) -> OneRosterRole | None:
        value = row[table.index["role"]].strip()
        role = _ROLE_BY_NAME.get(value.lower())
        if role is not None:
            return role
        expected = ", ".join(sorted(ONEROSTER_ROLES))
        self.issues.add(table.file, line, "role", f"unknown role '{value}' (expected one of {expected})")
        return None

    def _ref(self, kind: FileKind, ref: str, table: _Table, line: int, column: str) -> None:
        if ref in self.active[kind] or ref in self.rejected[kind]:
            return
        noun = _NOUN[kind]
        if ref in self.deleted[kind]:
            self.issues.add(table.file, line, column, f"{noun} '{ref}' is marked tobedeleted in this bundle")
        elif kind in self.broken:
            return
        elif self.modes[kind] == "bulk":
            self.issues.add(table.file, line, column, f"unknown {noun} '{ref}' (not in {kind}.csv)")
        else:
            # Delta or absent: the store may hold it; it checks these after parsing.
            self.external.append(ExternalRef(kind, ref, table.file, line, column))

    def _required_ref(self, kind: FileKind, ref: str, table: _Table, line: int, column: str) -> None:
        if ref in self.active[kind]:
            return
        if not ref:
            self.issues.add(table.file, line, column, f"{column} is empty")
        else:
            self._ref(kind, ref, table, line, column)

    def _keep(self, kind: str, sourced_id: str, before: int) -> bool:
        """Record an active row's id; True when the row had no issue of its own."""
        if len(self.issues.items) != before:
            self.rejected[kind].add(sourced_id)
            return False
        self.active[kind].add(sourced_id)
        return True

    # -- one method per file --

    def _orgs(self) -> list[Org]:
        table = self._table("orgs", ("sourcedId", "name", "type"), ("parentSourcedId", "identifier"))
        if table is None:
            return []
        orgs: list[Org] = []
        lines: dict[str, int] = {}
        seen: dict[str, int] = {}
        parent_at, ident_at = table.col("parentSourcedId"), table.col("identifier")
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "orgs", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            name = self._text(table, line, row, "name")
            org_type = row[table.index["type"]].strip().lower()
            if org_type not in ORG_TYPES:
                expected = ", ".join(sorted(ORG_TYPES))
                self.issues.add(table.file, line, "type", f"unknown org type '{org_type}' (expected one of {expected})")
            parent = (row[parent_at].strip() if parent_at is not None else "") or None
            identifier = row[ident_at].strip() if ident_at is not None else ""
            if self._keep("orgs", sourced_id, before):
                lines[sourced_id] = line
                orgs.append(Org(sourced_id, name, cast(OrgType, org_type), parent, identifier, modified))
        # Parents may come later in the file, so they are checked once all orgs are known.
        for org in orgs:
            if org.parent_id is not None:
                self._ref("orgs", org.parent_id, table, lines[org.sourced_id], "parentSourcedId")
        self._check_cycles(orgs, lines, table)
        return orgs

    def _check_cycles(self, orgs: list[Org], lines: dict[str, int], table: _Table) -> None:
        parents = {org.sourced_id: org.parent_id for org in orgs}
        state: dict[str, int] = {}  # 1 = on the current walk, 2 = known to end at a root
        for start in parents:
            walk: list[str] = []
            node: str | None = start
            while node is not None and node in parents and node not in state:
                state[node] = 1
                walk.append(node)
                node = parents[node]
            if node is not None and state.get(node) == 1:
                cycle = walk[walk.index(node) :]
                first = min(cycle, key=lambda org_id: lines[org_id])
                turn = cycle.index(first)
                ordered = cycle[turn:] + cycle[:turn] + [first]
                message = f"org hierarchy cycle: {' -> '.join(ordered)}"
                self.issues.add(table.file, lines[first], "parentSourcedId", message)
            for visited in walk:
                state[visited] = 2

    def _users(self) -> list[User]:
        required = ("sourcedId", "enabledUser", "orgSourcedIds", "role", "username", "givenName", "familyName")
        table = self._table("users", required, ("email", "metadata.title"))
        if table is None:
            return []
        users: list[User] = []
        seen: dict[str, int] = {}
        enabled_at, orgs_at = table.index["enabledUser"], table.index["orgSourcedIds"]
        email_at, title_at = table.col("email"), table.col("metadata.title")
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "users", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            enabled = row[enabled_at].strip().lower()
            if enabled not in ("true", "false"):
                message = f"enabledUser must be true or false, not '{row[enabled_at].strip()}'"
                self.issues.add(table.file, line, "enabledUser", message)
            role = self._role(table, line, row)
            username = self._text(table, line, row, "username")
            given = self._text(table, line, row, "givenName")
            family = self._text(table, line, row, "familyName")
            org_ids = tuple(dict.fromkeys(part.strip() for part in row[orgs_at].split(",") if part.strip()))
            if not org_ids:
                message = "orgSourcedIds is empty; a user belongs to at least one org"
                self.issues.add(table.file, line, "orgSourcedIds", message)
            for org_id in org_ids:
                self._required_ref("orgs", org_id, table, line, "orgSourcedIds")
            email = row[email_at].strip() if email_at is not None else ""
            title = row[title_at].strip() if title_at is not None else ""
            if self._keep("users", sourced_id, before) and role is not None:
                title = title or DEFAULT_TITLES[platform_role(role)]
                on = enabled == "true"
                users.append(User(sourced_id, given, family, role, username, email, org_ids, on, title, modified))
        return users

    def _courses(self) -> list[Course]:
        table = self._table("courses", ("sourcedId", "title", "orgSourcedId"), ())
        if table is None:
            return []
        courses: list[Course] = []
        seen: dict[str, int] = {}
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "courses", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            title = self._text(table, line, row, "title")
            org_id = row[table.index["orgSourcedId"]].strip()
            self._required_ref("orgs", org_id, table, line, "orgSourcedId")
            if self._keep("courses", sourced_id, before):
                courses.append(Course(sourced_id, title, org_id, modified))
        return courses

    def _classes(self) -> list[Class]:
        table = self._table("classes", ("sourcedId", "title", "courseSourcedId", "schoolSourcedId"), ("classCode",))
        if table is None:
            return []
        classes: list[Class] = []
        seen: dict[str, int] = {}
        code_at = table.col("classCode")
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "classes", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            title = self._text(table, line, row, "title")
            course_id = row[table.index["courseSourcedId"]].strip()
            school_id = row[table.index["schoolSourcedId"]].strip()
            self._required_ref("courses", course_id, table, line, "courseSourcedId")
            self._required_ref("orgs", school_id, table, line, "schoolSourcedId")
            code = row[code_at].strip() if code_at is not None else ""
            if self._keep("classes", sourced_id, before):
                classes.append(Class(sourced_id, title, course_id, school_id, code, modified))
        return classes

    def _enrollments(self) -> list[Enrollment]:
        required = ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role")
        table = self._table("enrollments", required, ())
        if table is None:
            return []
        enrollments: list[Enrollment] = []
        seen: dict[str, int] = {}
        class_at, school_at, user_at = (table.index[c] for c in ("classSourcedId", "schoolSourcedId", "userSourcedId"))
        # The largest file by far: known references are settled here without a call.
        classes, orgs, users = self.active["classes"], self.active["orgs"], self.active["users"]
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "enrollments", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            role = self._role(table, line, row)
            class_id, school_id, user_id = row[class_at].strip(), row[school_at].strip(), row[user_at].strip()
            if class_id not in classes:
                self._required_ref("classes", class_id, table, line, "classSourcedId")
            if school_id not in orgs:
                self._required_ref("orgs", school_id, table, line, "schoolSourcedId")
            if user_id not in users:
                self._required_ref("users", user_id, table, line, "userSourcedId")
            if self._keep("enrollments", sourced_id, before) and role is not None:
                enrollments.append(Enrollment(sourced_id, class_id, user_id, role, school_id, modified))
        return enrollments

    def _projects(self) -> list[Project]:
        table = self._table("projects", ("sourcedId", "title", "schoolSourcedId"), ())
        if table is None:
            return []
        projects: list[Project] = []
        seen: dict[str, int] = {}
        for line, row in table.rows():
            before = len(self.issues.items)
            head = self._head(table, "projects", line, row, seen)
            if head is None:
                continue
            sourced_id, modified = head
            title = self._text(table, line, row, "title")
            school_id = row[table.index["schoolSourcedId"]].strip()
            self._required_ref("orgs", school_id, table, line, "schoolSourcedId")
            if self._keep("projects", sourced_id, before):
                projects.append(Project(sourced_id, title, school_id, modified))
        return projects

    def _project_members(self) -> list[ProjectMember]:
        table = self._table("projectMembers", ("projectSourcedId", "userSourcedId", "role"), ())
        if table is None:
            return []
        members: list[ProjectMember] = []
        seen: dict[tuple[str, str], int] = {}
        project_at, user_at = table.index["projectSourcedId"], table.index["userSourcedId"]
        for line, row in table.rows():
            before = len(self.issues.items)
            key = (row[project_at].strip(), row[user_at].strip())
            if key in seen:
                message = f"user '{key[1]}' is listed twice in project '{key[0]}' (first on line {seen[key]})"
                self.issues.add(table.file, line, "userSourcedId", message)
                continue
            seen[key] = line
            status = row[table.status_at].strip() if table.status_at is not None else ""
            if self._status(table, line, status) is None:
                continue
            role = self._role(table, line, row)
            self._required_ref("projects", key[0], table, line, "projectSourcedId")
            self._required_ref("users", key[1], table, line, "userSourcedId")
            if len(self.issues.items) == before and role is not None:
                members.append(ProjectMember(key[0], key[1], role))
        return members
