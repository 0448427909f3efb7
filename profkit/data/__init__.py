"""Data files shipped with profkit (the built-in price table)."""
