"""Hostile input: one table of cases per area, each with its exit code and first stderr line."""
