"""Prices: versioned price books, cost estimates before create, accrued cost and project reports."""
