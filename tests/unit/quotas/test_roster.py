"""CSV rosters: kind detection from the header, row validation, duplicates, physical line numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.errors import ValidationError
from stackyard.quotas.models import StudentStatus
from stackyard.quotas.roster import (
    CourseRow,
    EnrollmentRow,
    Roster,
    RosterError,
    RosterKind,
    RowError,
    StudentRow,
    parse_roster,
)

PROPERTY = settings(database=None, deadline=None, max_examples=200)

STUDENTS = "student_number,name,email\n"
COURSES = "code,term,name,start_date,end_date,profile\n"
ENROLLMENTS = "student_number,course_code,term\n"
ROSTER = "student_number,name,email,course_code,term\n"


def errors_of(text: str) -> list[tuple[int, str]]:
    """(line, field) of every problem parse_roster reports."""
    with pytest.raises(RosterError) as caught:
        parse_roster(text)
    return [(e.line, e.field) for e in caught.value.errors]


def error_of(text: str) -> RowError:
    with pytest.raises(RosterError) as caught:
        parse_roster(text)
    (error,) = caught.value.errors
    return error


def student(line: int, number: str, name: str, email: str) -> StudentRow:
    return StudentRow(line, number, name, email, StudentStatus.ACTIVE, None, None)


# -- kinds -----------------------------------------------------------------------------------------


def test_a_students_file() -> None:
    roster = parse_roster(STUDENTS + "s1,Ann Lee,ann@uni.example\ns2,Bob,bob@uni.example\n")
    assert roster == Roster(
        RosterKind.STUDENTS,
        students=(student(2, "s1", "Ann Lee", "ann@uni.example"), student(3, "s2", "Bob", "bob@uni.example")),
    )


def test_a_students_file_with_every_optional_column() -> None:
    text = (
        "keystone_user_id,status,email,name,student_number,keystone_project_id\n"
        "u1,suspended,ann@uni.example,Ann,s1,p1\n"
        ",GRADUATED,bob@uni.example,Bob,s2,\n"
        ",,cy@uni.example,Cy,s3,\n"
    )
    assert parse_roster(text).students == (
        StudentRow(2, "s1", "Ann", "ann@uni.example", StudentStatus.SUSPENDED, "p1", "u1"),
        StudentRow(3, "s2", "Bob", "bob@uni.example", StudentStatus.GRADUATED, None, None),
        StudentRow(4, "s3", "Cy", "cy@uni.example", StudentStatus.ACTIVE, None, None),
    )


def test_a_courses_file() -> None:
    text = COURSES.replace("\n", ",max_enrollments\n") + (
        "CS101,2025S,Intro,2025-02-01,2025-06-30,lab,30\nCS102,2025S,Next,2025-02-01,2025-02-01,lab.big-1,\n"
    )
    roster = parse_roster(text)
    assert roster.kind is RosterKind.COURSES
    assert roster.courses == (
        CourseRow(2, "CS101", "2025S", "Intro", date(2025, 2, 1), date(2025, 6, 30), "lab", 30),
        CourseRow(3, "CS102", "2025S", "Next", date(2025, 2, 1), date(2025, 2, 1), "lab.big-1", None),
    )
    assert roster.students == () and roster.enrollments == ()


def test_an_enrollments_file() -> None:
    text = "term,course_code,student_number,expires_at\n2025S,CS101,s1,\n2025S,CS101,s2,2025-07-31\n"
    roster = parse_roster(text)
    assert roster.kind is RosterKind.ENROLLMENTS
    assert roster.enrollments == (
        EnrollmentRow(2, "s1", "CS101", "2025S", None),
        EnrollmentRow(3, "s2", "CS101", "2025S", datetime.combine(date(2025, 7, 31), time.max, tzinfo=UTC)),
    )


def test_a_registrar_roster_fills_students_and_enrollments() -> None:
    text = ROSTER + (
        "s1,Ann,ann@uni.example,CS101,2025S\n"
        "s1,Ann,ANN@uni.example,CS102,2025S\n"  # the same student: email compared ignoring case
        "s2,Bob,bob@uni.example,CS101,2025S\n"
    )
    roster = parse_roster(text)
    assert roster.kind is RosterKind.ROSTER
    assert roster.students == (
        student(2, "s1", "Ann", "ann@uni.example"),
        student(4, "s2", "Bob", "bob@uni.example"),
    )
    assert roster.enrollments == (
        EnrollmentRow(2, "s1", "CS101", "2025S", None),
        EnrollmentRow(3, "s1", "CS102", "2025S", None),
        EnrollmentRow(4, "s2", "CS101", "2025S", None),
    )
    assert roster.courses == ()


def test_header_names_ignore_case_spaces_and_quotes() -> None:
    roster = parse_roster(' "Student_Number",  NAME ,Email  \ns1,Ann,ann@uni.example\n')
    assert roster.kind is RosterKind.STUDENTS


def test_text_after_a_closing_quote_is_malformed() -> None:
    # strict CSV: a lenient reader would silently glue `"Ann" x` into one name
    assert errors_of(STUDENTS + 's1,"Ann" ,ann@uni.example\n') == [(2, "file")]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("student_number,name,email,phone", "phone"),
        ("student_number,name,email,Phone,room", "phone, room"),
        ("student_number,name,email,course_code,term,status", "status"),  # a roster has no optional columns
        (
            "student_number,course_code,term,code,name,start_date,end_date,profile",
            "student_number, course_code",
        ),
        ("code,term,name,start_date,end_date,profile,expires_at", "expires_at"),
        ("student_number,course_code,term,max_enrollments", "max_enrollments"),
    ],
)
def test_unknown_columns_are_named(header: str, named: str) -> None:
    error = error_of(header + "\nx\n")
    assert (error.line, error.field) == (1, "header")
    assert f"unknown column(s) {named} " in error.message


@pytest.mark.parametrize(
    ("header", "missing", "kind"),
    [
        ("student_number,name", "email", "students"),
        ("code,term,name,profile", "start_date, end_date", "courses"),
        ("student_number,course_code,expires_at", "term", "enrollments"),
        ("foo,bar", "student_number, name, email and unknown column(s) foo, bar", "students"),
        ("name,email", "student_number", "students"),
        ("student_number,name,email,course_code", "term", "roster"),
    ],
)
def test_missing_columns_are_named(header: str, missing: str, kind: str) -> None:
    error = error_of(header + "\nx\n")
    assert (error.line, error.field) == (1, "header")
    assert error.message.startswith(f"missing column(s) {missing} for a {kind} file, whose columns are ")


def test_a_column_twice_is_an_error() -> None:
    error = error_of("student_number,name,email,NAME\ns1,a,b@c.de,a\n")
    assert error.field == "header" and "'name' appears twice" in error.message


def test_a_column_without_a_name_is_an_error() -> None:
    assert errors_of("student_number,name,,email,\n") == [(1, "header"), (1, "header")]


# -- the file as a whole ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n  \n", "\r\n", ",,,\n , \n"])
def test_an_empty_file_is_an_error(text: str) -> None:
    error = error_of(text)
    assert (error.line, error.field) == (1, "file") and "empty" in error.message


@pytest.mark.parametrize(
    "text", [STUDENTS, STUDENTS.strip(), STUDENTS + "\n\n", "\ufeff" + STUDENTS + ",,\n"]
)
def test_a_header_without_rows_is_an_error(text: str) -> None:
    error = error_of(text)
    assert (error.line, error.field) == (1, "file") and "no data rows" in error.message


def test_a_byte_order_mark_is_ignored() -> None:
    assert parse_roster("\ufeff" + STUDENTS + "s1,Ann,ann@uni.example\n").kind is RosterKind.STUDENTS


def test_crlf_and_blank_lines_keep_physical_line_numbers() -> None:
    text = (
        "\r\n" + STUDENTS.replace("\n", "\r\n") + "\r\ns1,Ann,ann@uni.example\r\n  \r\n,,\r\ns2,Bob,bad\r\n"
    )
    assert errors_of(text) == [(7, "email")]
    text = text.replace("bad", "bob@uni.example")
    assert [s.line for s in parse_roster(text).students] == [4, 7]


def test_a_quoted_line_break_starts_the_record_on_its_first_line() -> None:
    text = STUDENTS + 's1,"Ann\nLee",ann@uni.example\ns2,Bob,bad\n'
    assert errors_of(text) == [(2, "name"), (4, "email")]


def test_cells_are_trimmed_and_quoted_commas_kept() -> None:
    (row,) = parse_roster(STUDENTS + '  s1 , "Lee, Ann",  ann@uni.example \n').students
    assert (row.student_number, row.name, row.email) == ("s1", "Lee, Ann", "ann@uni.example")


@pytest.mark.parametrize("row", ["s1,Ann", "s1,Ann,ann@uni.example,", "s1,Ann,ann@uni.example,x,y"])
def test_a_row_with_the_wrong_number_of_cells_is_an_error(row: str) -> None:
    error = error_of(STUDENTS + row + "\n")
    assert (error.line, error.field) == (2, "file") and "expected 3 cells" in error.message


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b", "\t", "\x7f"])
def test_control_characters_are_refused(bad: str) -> None:
    assert errors_of(STUDENTS + f"s1,A{bad}nn,ann@uni.example\n") == [(2, "name")]


@pytest.mark.parametrize(
    ("row", "line"),
    [('s1,"Ann,ann@uni.example\ns2,Bob,bob@uni.example\n', 3), ('s1,"Ann"x,ann@uni.example\n', 2)],
)
def test_malformed_quoting_is_an_error_at_its_line(row: str, line: int) -> None:
    error = error_of(STUDENTS + row)
    assert (error.line, error.field) == (line, "file") and "malformed CSV" in error.message


def test_rows_before_malformed_quoting_are_still_checked() -> None:
    assert errors_of(STUDENTS + 's1,Ann,bad\ns2,"Bob\n') == [(2, "email"), (3, "file")]


def test_every_problem_is_collected_in_line_order() -> None:
    text = ROSTER + (
        "s1,Ann,ann@uni.example,CS101,2025S\n"
        "s 2,,not-an-email,,\n"
        "s3,Cy,cy@uni.example,CS101\n"
        "s1,Ann,ann@uni.example,CS101,2025S\n"
    )
    assert errors_of(text) == [
        (3, "student_number"),
        (3, "name"),
        (3, "email"),
        (3, "course_code"),
        (3, "term"),
        (4, "file"),
        (5, "course_code"),
    ]


def test_the_error_summarises_and_lists_everything() -> None:
    text = STUDENTS + "".join(f"s{n},Name,bad{n}\n" for n in range(8))
    with pytest.raises(RosterError) as caught:
        parse_roster(text, source="upload")
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.field == "file"
    assert len(error.errors) == 8
    assert error.message.startswith("upload has 8 problems: line 2 (email): 'bad0' is not an email address;")
    assert "line 6 (email)" in error.message and "line 7 (email)" not in error.message
    assert error.message.endswith("; and 3 more")
    assert str(error) == f"file: {error.message}"


def test_a_single_problem_is_singular() -> None:
    with pytest.raises(RosterError, match=r"roster\.csv has 1 problem: line 2 \(email\)"):
        parse_roster(STUDENTS + "s1,Ann,bad\n")


def test_roster_errors_can_be_built_from_row_errors() -> None:
    error = RosterError((RowError(4, "course_code", "no course X"), RowError(9, "profile", "no profile y")))
    assert error.errors[0].line == 4
    assert (
        error.message
        == "roster.csv has 2 problems: line 4 (course_code): no course X; line 9 (profile): no profile y"
    )


def test_rows_are_immutable() -> None:
    (row,) = parse_roster(STUDENTS + "s1,Ann,ann@uni.example\n").students
    with pytest.raises(AttributeError):
        row.name = "Bob"  # type: ignore[misc]


# -- students --------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["s1", "S-123_x", "0", "a" * 64, "2025-CS_01"])
def test_good_student_numbers(number: str) -> None:
    assert parse_roster(STUDENTS + f"{number},Ann,ann@uni.example\n").students[0].student_number == number


@pytest.mark.parametrize("number", ["s 1", "s/1", "s.1", "é1", "s1;", "a" * 65, "s@1", "../x"])
def test_bad_student_numbers(number: str) -> None:
    error = error_of(STUDENTS + f'"{number}",Ann,ann@uni.example\n')
    assert (error.line, error.field) == (2, "student_number")


@pytest.mark.parametrize("email", ["ann@uni.example", "a.b+c@mail.uni.edu", "x@y.z", "ANN@UNI.EXAMPLE"])
def test_good_emails(email: str) -> None:
    assert parse_roster(STUDENTS + f"s1,Ann,{email}\n").students[0].email == email


@pytest.mark.parametrize(
    "email",
    ["ann", "ann@uni", "@uni.example", "ann@.", "ann@@uni.example", "a nn@uni.example", "ann@uni.example."],
)
def test_bad_emails(email: str) -> None:
    error = error_of(STUDENTS + f"s1,Ann,{email}\n")
    assert (error.line, error.field) == (2, "email") and "not an email address" in error.message


@pytest.mark.parametrize(
    ("column", "row"), [("student_number", ",Ann,a@b.co"), ("name", "s1,,a@b.co"), ("email", "s1,Ann, ")]
)
def test_required_student_cells(column: str, row: str) -> None:
    error = error_of(STUDENTS + row + "\n")
    assert (error.field, error.message) == (column, "must not be empty")


def test_long_cells_are_refused() -> None:
    assert errors_of(STUDENTS + f"s1,{'n' * 256},ann@uni.example\n") == [(2, "name")]
    assert parse_roster(STUDENTS + f"s1,{'n' * 255},ann@uni.example\n").students[0].name == "n" * 255
    text = "student_number,name,email,keystone_project_id\n" + f"s1,Ann,ann@uni.example,{'p' * 65}\n"
    assert errors_of(text) == [(2, "keystone_project_id")]


@pytest.mark.parametrize("status", ["enrolled", "deleted", "yes"])
def test_an_unknown_status_lists_the_known_ones(status: str) -> None:
    error = error_of("student_number,name,email,status\n" + f"s1,Ann,ann@uni.example,{status}\n")
    assert error.field == "status" and "active, suspended, graduated" in error.message


def test_a_student_number_twice_names_the_first_line() -> None:
    text = STUDENTS + "s1,Ann,ann@uni.example\ns2,Bob,bob@uni.example\ns1,Ann,ann@uni.example\n"
    error = error_of(text)
    assert (error.line, error.field) == (4, "student_number")
    assert "already appears on line 2" in error.message


def test_a_duplicate_is_reported_even_when_the_first_row_is_bad() -> None:
    assert errors_of(STUDENTS + "s1,Ann,bad\ns1,Ann,ann@uni.example\n") == [
        (2, "email"),
        (3, "student_number"),
    ]


# -- courses ---------------------------------------------------------------------------------------


def course_line(**cells: str) -> str:
    values = {
        "code": "CS101",
        "term": "2025S",
        "name": "Intro",
        "start_date": "2025-02-01",
        "end_date": "2025-06-30",
        "profile": "lab",
        "max_enrollments": "",
    }
    values.update(cells)
    return ",".join(values.values()) + "\n"


COURSES_MAX = COURSES.replace("\n", ",max_enrollments\n")


@pytest.mark.parametrize("value", ["2025/02/01", "01-02-2025", "2025-02-30", "20250201", "2025-2-1", "soon"])
@pytest.mark.parametrize("column", ["start_date", "end_date"])
def test_bad_dates(column: str, value: str) -> None:
    error = error_of(COURSES_MAX + course_line(**{column: value}))
    assert error.field == column and "YYYY-MM-DD" in error.message


def test_a_course_cannot_end_before_it_starts() -> None:
    error = error_of(COURSES_MAX + course_line(start_date="2025-06-30", end_date="2025-02-01"))
    assert error.field == "end_date" and "before start_date 2025-06-30" in error.message


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", "1e3", "10000000000", "²"])
def test_max_enrollments_must_be_a_positive_whole_number(value: str) -> None:
    assert errors_of(COURSES_MAX + course_line(max_enrollments=value)) == [(2, "max_enrollments")]


@pytest.mark.parametrize("profile", ["Lab", "lab profile", "-lab", "lab/1", "l" * 65])
def test_bad_profile_names(profile: str) -> None:
    assert errors_of(COURSES_MAX + course_line(profile=profile)) == [(2, "profile")]


@pytest.mark.parametrize("column", ["code", "term", "name", "start_date", "end_date", "profile"])
def test_required_course_cells(column: str) -> None:
    error = error_of(COURSES_MAX + course_line(**{column: ""}))
    assert (error.field, error.message) == (column, "must not be empty")


def test_code_and_term_lengths_are_bounded() -> None:
    assert errors_of(COURSES_MAX + course_line(code="C" * 65, term="T" * 33)) == [(2, "code"), (2, "term")]


def test_the_same_course_in_one_term_twice_is_an_error() -> None:
    text = COURSES_MAX + course_line() + course_line(term="2025W") + course_line(name="Again")
    error = error_of(text)
    assert (error.line, error.field) == (
        4,
        "code",
    ) and "CS101 / 2025S already appears on line 2" in error.message


# -- enrollments -----------------------------------------------------------------------------------


EXPIRING = "student_number,course_code,term,expires_at\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-07-31", datetime(2025, 7, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2025-07-31T12:30:00", datetime(2025, 7, 31, 12, 30, tzinfo=UTC)),
        ("2025-07-31 12:30", datetime(2025, 7, 31, 12, 30, tzinfo=UTC)),
        ("2025-07-31T12:30:00Z", datetime(2025, 7, 31, 12, 30, tzinfo=UTC)),
        ("2025-07-31T14:30:00+02:00", datetime(2025, 7, 31, 12, 30, tzinfo=UTC)),
        ("2025-07-31T23:30:00-01:00", datetime(2025, 8, 1, 0, 30, tzinfo=UTC)),
    ],
)
def test_expiry_is_utc(value: str, expected: datetime) -> None:
    (row,) = parse_roster(EXPIRING + f"s1,CS101,2025S,{value}\n").enrollments
    assert row.expires_at == expected
    assert row.expires_at is not None and row.expires_at.utcoffset() is not None
    assert row.expires_at.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["tomorrow", "2025-02-30", "31/07/2025", "20250731", "2025-07-31T25:00", "2025-07-31X1"]
)
def test_bad_expiry(value: str) -> None:
    error = error_of(EXPIRING + f"s1,CS101,2025S,{value}\n")
    assert error.field == "expires_at" and "ISO date" in error.message


@pytest.mark.parametrize(
    ("row", "fields"),
    [
        (",CS101,2025S", ["student_number"]),
        ("s1,,2025S", ["course_code"]),
        ("s1,CS101,", ["term"]),
        ("s 1,,", ["student_number", "course_code", "term"]),
    ],
)
def test_required_enrollment_cells(row: str, fields: list[str]) -> None:
    assert errors_of(ENROLLMENTS + row + "\n") == [(2, f) for f in fields]


def test_the_same_enrollment_twice_is_an_error() -> None:
    text = ENROLLMENTS + "s1,CS101,2025S\ns1,CS101,2025W\ns2,CS101,2025S\ns1,CS101,2025S\n"
    error = error_of(text)
    assert (error.line, error.field) == (5, "course_code") and "s1 / CS101 / 2025S" in error.message
    assert "line 2" in error.message


# -- registrar rosters -----------------------------------------------------------------------------


def test_a_repeated_student_with_another_name_is_an_error_on_the_later_line() -> None:
    text = ROSTER + "s1,Ann,ann@uni.example,CS101,2025S\ns1,Anne,ann@uni.example,CS102,2025S\n"
    error = error_of(text)
    assert (error.line, error.field) == (3, "name")
    assert error.message == "student s1 is named 'Ann' on line 2"


def test_a_repeated_student_with_another_email_is_an_error_on_the_later_line() -> None:
    text = ROSTER + (
        "s1,Ann,ann@uni.example,CS101,2025S\n"
        "s2,Bob,bob@uni.example,CS101,2025S\n"
        "s1,Ann,a@uni.example,CS102,2025S\n"
    )
    error = error_of(text)
    assert (error.line, error.field) == (4, "email") and "on line 2" in error.message


def test_a_repeated_roster_line_is_a_duplicate_enrollment() -> None:
    text = ROSTER + "s1,Ann,ann@uni.example,CS101,2025S\ns1,Ann,ann@uni.example,CS101,2025S\n"
    error = error_of(text)
    assert (error.line, error.field) == (3, "course_code") and "already appears on line 2" in error.message


def test_a_registrar_line_reports_student_and_enrollment_problems_together() -> None:
    assert errors_of(ROSTER + "s1,Ann,bad,,2025S\n") == [(2, "email"), (2, "course_code")]


def test_a_student_whose_first_line_is_bad_is_not_compared_twice() -> None:
    # the first line's bad email is reported once; the later identical line repeats the same problem
    text = ROSTER + "s1,Ann,bad,CS101,2025S\ns1,Ann,bad,CS102,2025S\n"
    assert errors_of(text) == [(2, "email"), (3, "email")]


# -- round trip of generated files -----------------------------------------------------------------

numbers = st.text("abcXYZ019-_", min_size=1, max_size=12)
names = (
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\ufeff"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
emails = st.builds(
    lambda user, host: f"{user}@{host}.example",
    st.text("abc.1+", min_size=1, max_size=8),
    st.text("abc1-", min_size=1, max_size=8),
)
statuses = st.sampled_from(StudentStatus)


@PROPERTY
@given(
    people=st.dictionaries(numbers, st.tuples(names, emails, statuses), min_size=1, max_size=8),
    crlf=st.booleans(),
    blank_every=st.integers(0, 3),
)
def test_any_well_formed_students_file_parses_back(
    people: dict[str, tuple[str, str, StudentStatus]], crlf: bool, blank_every: int
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["Status", "EMAIL", "student_number", "name"])
    expected: list[StudentRow] = []
    line = 1
    for position, (number, (name, email, status)) in enumerate(people.items()):
        if blank_every and position % blank_every == 0:
            out.write("\r\n" if crlf else "\n")
            line += 1
        writer.writerow([status.value.upper(), email, number, name])
        line += 1
        expected.append(StudentRow(line, number, name, email, status, None, None))
    roster = parse_roster(out.getvalue())
    assert roster == Roster(RosterKind.STUDENTS, students=tuple(expected))
