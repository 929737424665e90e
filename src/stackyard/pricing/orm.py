"""The `price_books` table: every imported price book, kept as a numbered version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.db.base import Base, UTCDateTime


class PriceBookRecord(Base):
    """One version of the price book; `document` is the normalised form price_book_document gives."""

    __tablename__ = "price_books"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    document: Mapped[dict[str, object]] = mapped_column(JSON, nullable=False)
    comment: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
