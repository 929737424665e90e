"""Price book versions through the repository and service on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.base import Base
from stackyard.db.engine import make_engine, session_factory, transaction
from stackyard.db.migrate import upgrade
from stackyard.errors import NotFound, ValidationError
from stackyard.pricing.models import InstanceSize, parse_price_book, price_book_document
from stackyard.pricing.orm import PriceBookRecord
from stackyard.pricing.repository import PriceBookRepository
from stackyard.pricing.service import PricingService
from support.postgres import temporary_database

BOOK = {
    "currency": "EUR",
    "regions": {
        "RegionOne": {
            "flavors": {"m1.small": 0.02},
            "units": {"vcpu_hour": "0.01", "ram_gib_hour": "0.005", "root_disk_gib_month": "0.04"},
        },
    },
}
CHEAPER = {"currency": "EUR", "regions": {"*": {"flavors": {"m1.small": "0.015"}}}}


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A database of its own on the machine's PostgreSQL, dropped afterwards (unreachable: fails)."""
    with temporary_database("stackyard_pricing") as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("pricing") / "stackyard.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on an empty price_books table."""
    factory = session_factory(engine)
    with transaction(factory) as session:
        session.execute(delete(PriceBookRecord))
    return factory


def import_book(
    sessions: sessionmaker[Session], document: dict[str, object], comment: str = "", actor: str = "ops"
) -> int:
    with transaction(sessions) as session:
        return PricingService(session).import_price_book(document, comment=comment, actor=actor).version


def test_orm_matches_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    ours = [d for d in diffs if "price_books" in repr(d)]
    assert ours == []


def test_empty_database_has_no_current_book(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        service = PricingService(session)
        with pytest.raises(NotFound, match="none has been imported yet"):
            service.current()
        with pytest.raises(NotFound, match="none has been imported yet"):
            service.summary()
        with pytest.raises(NotFound, match="no version 3"):
            service.get(3)
        with pytest.raises(NotFound):
            service.estimate("RegionOne", InstanceSize("m1.small", 1, 2048, 20))
        assert service.versions() == []


def test_imports_are_numbered_and_the_latest_is_current(sessions: sessionmaker[Session]) -> None:
    before = datetime.now(UTC)
    assert import_book(sessions, BOOK, comment="first", actor="alice") == 1
    assert import_book(sessions, CHEAPER, comment="cheaper", actor="bob") == 2
    with sessions() as session:
        service = PricingService(session)
        current = service.current()
        assert current.version == 2 and current.regions.keys() == {"*"}
        first = service.get(1)
        assert first == parse_price_book(BOOK, version=1)
        versions = service.versions()
        assert [(v.version, v.comment, v.created_by) for v in versions] == [
            (2, "cheaper", "bob"),
            (1, "first", "alice"),
        ]
        for summary in versions:
            assert summary.created_at.tzinfo is not None
            assert before - timedelta(seconds=5) <= summary.created_at <= datetime.now(UTC)
        assert service.summary().version == 2 and service.summary(1).comment == "first"


def test_stored_document_is_the_normalised_form(sessions: sessionmaker[Session]) -> None:
    import_book(sessions, BOOK)
    with sessions() as session:
        record = PriceBookRepository(session).get(1)
        assert record is not None
        assert record.document == price_book_document(parse_price_book(BOOK))
        assert record.document["regions"]["RegionOne"]["flavors"]["m1.small"] == "0.02"  # type: ignore[index]
        assert record.currency == "EUR"
        assert PriceBookRepository(session).get(2) is None


def test_invalid_imports_lose_nothing(sessions: sessionmaker[Session]) -> None:
    import_book(sessions, BOOK)
    bad = {"currency": "EUR", "regions": {"RegionOne": {"units": {"vcpu_hour": "-1"}}}}
    with pytest.raises(ValidationError) as caught:
        import_book(sessions, bad)
    assert caught.value.field == "regions.RegionOne.units.vcpu_hour"
    with pytest.raises(ValidationError) as long_comment:
        import_book(sessions, CHEAPER, comment="x" * 501)
    assert long_comment.value.field == "comment"
    with pytest.raises(ValidationError) as no_actor:
        import_book(sessions, CHEAPER, actor=" ")
    assert no_actor.value.field == "actor"
    with sessions() as session:
        service = PricingService(session)
        assert service.current() == parse_price_book(BOOK, version=1)
        assert [v.version for v in service.versions()] == [1]
    # The next good import still takes the next number.
    assert import_book(sessions, CHEAPER) == 2


def test_a_rolled_back_import_leaves_no_version(sessions: sessionmaker[Session]) -> None:
    import_book(sessions, BOOK)
    with sessions() as session, session.begin():
        assert PricingService(session).import_price_book(CHEAPER, comment="", actor="ops").version == 2
        session.rollback()
    with sessions() as session:
        assert PricingService(session).current().version == 1


def test_concurrent_imports_take_distinct_versions(sessions: sessionmaker[Session]) -> None:
    import_book(sessions, BOOK)
    first_added = threading.Event()
    release_first = threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction(sessions) as session:
                results["first"] = (
                    PricingService(session).import_price_book(CHEAPER, comment="first", actor="a").version
                )
                first_added.set()
                release_first.wait(30)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
            first_added.set()

    def second() -> None:
        try:
            results["second"] = import_book(sessions, CHEAPER, comment="second", actor="b")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    one = threading.Thread(target=first)
    one.start()
    assert first_added.wait(30)
    two = threading.Thread(target=second)
    two.start()
    two.join(1.0)  # the second import waits for the first transaction
    assert two.is_alive() or errors
    release_first.set()
    one.join(30)
    two.join(30)
    assert errors == []
    assert results == {"first": 2, "second": 3}
    with sessions() as session:
        assert [v.comment for v in PricingService(session).versions()] == ["second", "first", ""]


def test_service_prices_with_the_current_book_and_names_fields(sessions: sessionmaker[Session]) -> None:
    import_book(sessions, BOOK)
    small = InstanceSize("m1.small", 1, 2048, 20)
    with sessions() as session:
        service = PricingService(session)
        estimate = service.estimate("RegionOne", small, 3)
        assert (estimate.hourly, estimate.monthly, estimate.price_book_version) == (
            Decimal("0.06"),
            Decimal("43.8"),
            1,
        )
        checks = [
            (lambda: service.estimate("Elsewhere", small), "region"),
            (
                lambda: service.estimate("RegionOne", InstanceSize("m1.odd", 1, 1024, 0, volume_gib=5)),
                "volume_gib",
            ),
            (
                lambda: service.estimate("RegionOne", InstanceSize("m1.small", 1, 2048, 20, floating_ips=1)),
                "floating_ips",
            ),
            (lambda: service.estimate("RegionOne", small, 0), "count"),
            (lambda: service.estimate("RegionOne", InstanceSize("m1.small", -1, 2048, 20)), "vcpus"),
            (
                lambda: service.instance_cost("Elsewhere", small, datetime.now(UTC), datetime.now(UTC)),
                "region",
            ),
            (
                lambda: service.project_report(
                    [], "Elsewhere", datetime.now(UTC) - timedelta(days=1), datetime.now(UTC)
                ),
                "region",
            ),
        ]
        for call, field in checks:
            with pytest.raises(ValidationError) as caught:
                call()
            assert caught.value.field == field
        import_book(sessions, {"currency": "EUR", "regions": {"RegionOne": {"units": {"vcpu_hour": "0.01"}}}})
    with sessions() as session:
        with pytest.raises(ValidationError) as unpriced_flavor:
            PricingService(session).estimate("RegionOne", InstanceSize("m1.odd", 1, 1024, 0))
        assert unpriced_flavor.value.field == "flavor"
        created = datetime.now(UTC) - timedelta(hours=10)
        cost = PricingService(session).instance_cost(
            "RegionOne", InstanceSize("m1.x", 2, 0, 0), created, created + timedelta(hours=10)
        )
        assert cost.accrued == Decimal("0.2") and cost.price_book_version == 2
