"""Typed, versioned result documents: what profkit writes and reads back."""
