"""Parse and validate the CSV rosters universities export: students, courses, enrollments (pure)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum

from stackyard.errors import ValidationError
from stackyard.quotas.models import StudentStatus

MAX_ERRORS_IN_MESSAGE = 5  # the exception message names this many; `errors` holds them all

# The rules the enrollment service applies (emails a little stricter), so a bad file fails before any
# import starts.
_NUMBER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PROFILE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIMITS = {"code": 64, "term": 32, "course_code": 64, "keystone_project_id": 64, "keystone_user_id": 64}
_DEFAULT_LIMIT = 255


class RosterKind(StrEnum):
    STUDENTS = "students"
    COURSES = "courses"
    ENROLLMENTS = "enrollments"
    ROSTER = "roster"  # what registrars export: one line per (student, course)


@dataclass(frozen=True)
class _Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


# A header must hold a kind's required columns and nothing outside its known ones; a roster header is
# the union of a students and an enrollments header, and no header can fit two kinds.
_COLUMNS: dict[RosterKind, _Columns] = {
    RosterKind.ROSTER: _Columns(("student_number", "name", "email", "course_code", "term")),
    RosterKind.COURSES: _Columns(
        ("code", "term", "name", "start_date", "end_date", "profile"), ("max_enrollments",)
    ),
    RosterKind.STUDENTS: _Columns(
        ("student_number", "name", "email"), ("status", "keystone_project_id", "keystone_user_id")
    ),
    RosterKind.ENROLLMENTS: _Columns(("student_number", "course_code", "term"), ("expires_at",)),
}


@dataclass(frozen=True)
class StudentRow:
    line: int
    student_number: str
    name: str
    email: str
    status: StudentStatus
    keystone_project_id: str | None
    keystone_user_id: str | None


@dataclass(frozen=True)
class CourseRow:
    line: int
    code: str
    term: str
    name: str
    start_date: date
    end_date: date
    profile: str
    max_enrollments: int | None


@dataclass(frozen=True)
class EnrollmentRow:
    line: int
    student_number: str
    course_code: str
    term: str
    # UTC-aware. A bare date means the END of that day (23:59:59.999999 UTC): the enrollment still
    # counts on the day written, as a course's end date does (QuotaPolicy.expiry_of).
    expires_at: datetime | None


@dataclass(frozen=True)
class Roster:
    kind: RosterKind
    students: tuple[StudentRow, ...] = ()
    courses: tuple[CourseRow, ...] = ()
    enrollments: tuple[EnrollmentRow, ...] = ()


@dataclass(frozen=True)
class RowError:
    """One problem of a file: `line` is the physical line (header = 1); `field` the column, or 'header'
    or 'file' for a problem of the header or of the CSV itself."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.field}): {self.message}"


class RosterError(ValidationError):
    """A roster file with problems; `errors` lists every one of them, in line order."""

    def __init__(self, errors: tuple[RowError, ...], *, source: str = "roster.csv") -> None:
        shown = "; ".join(str(e) for e in errors[:MAX_ERRORS_IN_MESSAGE])
        more = len(errors) - MAX_ERRORS_IN_MESSAGE
        count = f"{len(errors)} problem" + ("" if len(errors) == 1 else "s")
        message = f"{source} has {count}: {shown}" + (f"; and {more} more" if more > 0 else "")
        super().__init__("file", message)
        self.errors = errors
        self.source = source


class _Row:
    """The cells of one data row by column name; reading a cell records its problems in `errors`."""

    def __init__(self, line: int, cells: Mapping[str, str]) -> None:
        self.line = line
        self.cells = cells
        self.errors: list[RowError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(self.line, field, message))

    def optional(self, column: str) -> str | None:
        value = self.cells.get(column, "")
        if not value:
            return None
        limit = _LIMITS.get(column, _DEFAULT_LIMIT)
        if len(value) > limit:
            self.fail(column, f"must be at most {limit} characters")
        return value

    def text(self, column: str) -> str:
        value = self.optional(column)
        if value is None:
            self.fail(column, "must not be empty")
            return ""
        return value

    def matching(self, column: str, pattern: re.Pattern[str], hint: str) -> str:
        value = self.text(column)
        if value and not pattern.fullmatch(value):
            self.fail(column, f"{value!r} {hint}")
        return value

    def day(self, column: str) -> date | None:
        value = self.text(column)
        if not value:
            return None
        parsed = _parse_date(value)
        if parsed is None:
            self.fail(column, f"{value!r} is not a date; write YYYY-MM-DD")
        return parsed


def _parse_date(value: str) -> date | None:
    if not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _parse_expiry(value: str) -> datetime | None:
    """An ISO date (→ the end of that day, UTC) or date and time (naive → UTC); None when neither."""
    day = _parse_date(value)
    if day is not None:
        return datetime.combine(day, time.max, tzinfo=UTC)
    if len(value) <= 10 or _parse_date(value[:10]) is None or value[10] not in "Tt ":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _student_number(row: _Row) -> str:
    return row.matching(
        "student_number", _NUMBER, "is not a student number: use 1-64 letters, digits, '-' or '_'"
    )


def _student(row: _Row) -> StudentRow | None:
    number = _student_number(row)
    name = row.text("name")
    email = row.matching("email", _EMAIL, "is not an email address")
    raw_status = row.optional("status")
    status = StudentStatus.ACTIVE
    if raw_status is not None:
        try:
            status = StudentStatus(raw_status.lower())
        except ValueError:
            known = ", ".join(s.value for s in StudentStatus)
            row.fail("status", f"{raw_status!r} is not a status; use one of {known}")
    project = row.optional("keystone_project_id")
    user = row.optional("keystone_user_id")
    if row.errors:
        return None
    return StudentRow(row.line, number, name, email, status, project, user)


def _course(row: _Row) -> CourseRow | None:
    code = row.text("code")
    term = row.text("term")
    name = row.text("name")
    start = row.day("start_date")
    end = row.day("end_date")
    if start is not None and end is not None and end < start:
        row.fail("end_date", f"{end.isoformat()} is before start_date {start.isoformat()}")
    profile = row.matching(
        "profile", _PROFILE, "is not a profile name: lower-case letters, digits, '_', '.' or '-'"
    )
    raw_max = row.optional("max_enrollments")
    max_enrollments: int | None = None
    if raw_max is not None:
        if raw_max.isascii() and raw_max.isdigit() and len(raw_max) <= 9 and int(raw_max) > 0:
            max_enrollments = int(raw_max)
        else:
            row.fail(
                "max_enrollments", f"{raw_max!r} is not a positive whole number (leave it empty for none)"
            )
    if row.errors or start is None or end is None:
        return None
    return CourseRow(row.line, code, term, name, start, end, profile, max_enrollments)


def _enrollment(row: _Row, *, number_checked: bool = False) -> EnrollmentRow | None:
    number = row.cells.get("student_number", "") if number_checked else _student_number(row)
    course_code = row.text("course_code")
    term = row.text("term")
    raw_expiry = row.optional("expires_at")
    expires_at: datetime | None = None
    if raw_expiry is not None:
        expires_at = _parse_expiry(raw_expiry)
        if expires_at is None:
            row.fail("expires_at", f"{raw_expiry!r} is not an ISO date (YYYY-MM-DD) or date and time")
    if row.errors:
        return None
    return EnrollmentRow(row.line, number, course_code, term, expires_at)


def _records(text: str, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
    """(physical line where the record starts, its stripped cells), blank records skipped. Malformed
    quoting ends the file with an error in `errors`: the reader cannot resynchronise after it."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    start = 1
    try:
        for cells in reader:
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                yield start, stripped
            start = reader.line_num + 1
    except csv.Error as exc:
        errors.append(RowError(max(reader.line_num, start), "file", f"malformed CSV: {exc}"))


def _header(
    line: int, cells: Sequence[str], errors: list[RowError]
) -> tuple[RosterKind, tuple[str, ...]] | None:
    """The kind of file a header row announces and its normalised column names; None (and the
    problems in `errors`) when it announces none."""
    names = tuple(cell.lower() for cell in cells)
    problems: list[RowError] = []
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            problems.append(RowError(line, "header", f"column {position} has no name"))
        elif name in seen:
            problems.append(RowError(line, "header", f"column {name!r} appears twice"))
        seen.add(name)
    if problems:
        errors.extend(problems)
        return None
    present = set(names)

    def mismatch(kind: RosterKind) -> tuple[list[str], list[str]]:
        columns = _COLUMNS[kind]
        return [c for c in columns.required if c not in present], [n for n in names if n not in columns.known]

    # The kind the header is closest to: fewest columns missing or unknown (ties: _COLUMNS order).
    kind = min(_COLUMNS, key=lambda k: sum(map(len, mismatch(k))))
    missing, unknown = mismatch(kind)
    if not missing and not unknown:
        return kind, names
    parts = [
        f"{what} column(s) {', '.join(cs)}" for what, cs in (("missing", missing), ("unknown", unknown)) if cs
    ]
    columns = _COLUMNS[kind]
    optional = f" (optional: {', '.join(columns.optional)})" if columns.optional else ""
    kinds = ", ".join(k.value for k in RosterKind)
    errors.append(
        RowError(
            line,
            "header",
            f"{' and '.join(parts)} for a {kind.value} file, whose columns are {', '.join(columns.required)}"
            f"{optional}; the header names the columns of one kind of file ({kinds})",
        )
    )
    return None


class _FirstLines:
    """The first line of each key; a later line with the same key is an error that names it."""

    def __init__(self, what: str, field: str) -> None:
        self._what = what
        self._field = field
        self._lines: dict[tuple[str, ...], int] = {}

    def check(self, key: tuple[str, ...], line: int) -> RowError | None:
        """None for the first line of `key` (or a key with an empty part: that row has its own error)."""
        if not all(key):
            return None
        first = self._lines.setdefault(key, line)
        if first == line:
            return None
        return RowError(line, self._field, f"{self._what} {' / '.join(key)} already appears on line {first}")


class _Builder:
    """Turns the rows of one kind of file into a Roster, collecting every problem."""

    def __init__(self, kind: RosterKind) -> None:
        self.kind = kind
        self.errors: list[RowError] = []
        self._students: list[StudentRow] = []
        self._courses: list[CourseRow] = []
        self._enrollments: list[EnrollmentRow] = []
        self._student_lines = _FirstLines("student", "student_number")
        self._course_lines = _FirstLines("course", "code")
        self._enrollment_lines = _FirstLines("enrollment", "course_code")
        self._identities: dict[str, tuple[int, str, str]] = {}  # roster files: number → (line, name, email)

    def add(self, row: _Row) -> None:
        cells = row.cells
        duplicate: RowError | None = None
        if self.kind is RosterKind.STUDENTS:
            duplicate = self._student_lines.check((cells["student_number"],), row.line)
            student = _student(row)
            if student is not None and duplicate is None:
                self._students.append(student)
        elif self.kind is RosterKind.COURSES:
            duplicate = self._course_lines.check((cells["code"], cells["term"]), row.line)
            course = _course(row)
            if course is not None and duplicate is None:
                self._courses.append(course)
        elif self.kind is RosterKind.ENROLLMENTS:
            duplicate = self._enrollment_lines.check(self._enrollment_key(cells), row.line)
            enrollment = _enrollment(row)
            if enrollment is not None and duplicate is None:
                self._enrollments.append(enrollment)
        else:
            self._add_roster_line(row)
        self.errors.extend(row.errors)
        if duplicate is not None:
            self.errors.append(duplicate)

    @staticmethod
    def _enrollment_key(cells: Mapping[str, str]) -> tuple[str, str, str]:
        return cells["student_number"], cells["course_code"], cells["term"]

    def _add_roster_line(self, row: _Row) -> None:
        """A student (once, however many lines repeat them) and one enrollment. A repeated student must
        repeat the same name and email (compared ignoring case) as their first line."""
        cells = row.cells
        number = cells["student_number"]
        first_line, first_name, first_email = self._identities.setdefault(
            number, (row.line, cells["name"], cells["email"])
        )
        is_first = first_line == row.line
        if not is_first and number:
            if cells["name"] != first_name:
                row.fail("name", f"student {number} is named {first_name!r} on line {first_line}")
            if cells["email"].casefold() != first_email.casefold():
                row.fail("email", f"student {number} has email {first_email!r} on line {first_line}")
        duplicate = self._enrollment_lines.check(self._enrollment_key(cells), row.line)
        if duplicate is not None:
            row.errors.append(duplicate)
        student = _student(row)
        enrollment = _enrollment(row, number_checked=True)
        if student is None or enrollment is None:
            return
        if is_first:
            self._students.append(student)
        self._enrollments.append(enrollment)

    def roster(self) -> Roster:
        return Roster(self.kind, tuple(self._students), tuple(self._courses), tuple(self._enrollments))


def parse_roster(text: str, *, source: str = "roster.csv") -> Roster:
    """Validate a CSV roster whose header row says what it holds (see RosterKind); raise RosterError
    listing every problem by physical line number when anything is wrong. Column names are matched
    ignoring case and surrounding spaces, cells are stripped, blank lines are skipped, a leading BOM
    is ignored. The caller bounds the size of `text`."""
    errors: list[RowError] = []
    records = _records(text.removeprefix("\ufeff"), errors)
    header = next(records, None)
    if header is None:
        if not errors:
            errors.append(RowError(1, "file", "the file is empty; it needs a header row"))
        raise RosterError(tuple(errors), source=source)
    header_line, header_cells = header
    announced = _header(header_line, header_cells, errors)
    if announced is None:
        raise RosterError(tuple(errors), source=source)
    kind, columns = announced
    builder = _Builder(kind)
    rows = 0
    for line, cells in records:
        rows += 1
        row = _Row(line, dict(zip(columns, cells, strict=False)))
        if len(cells) != len(columns):
            row.fail("file", f"expected {len(columns)} cells as in the header, found {len(cells)}")
        for column, value in row.cells.items():
            if _CONTROL.search(value):
                row.fail(column, "must not contain line breaks or control characters")
        if row.errors:
            builder.errors.extend(row.errors)
            continue
        builder.add(row)
    if rows == 0 and not errors:
        errors.append(RowError(header_line, "file", "the file has a header but no data rows"))
    errors.extend(builder.errors)
    if errors:
        raise RosterError(tuple(sorted(errors, key=lambda e: e.line)), source=source)
    return builder.roster()
