"""Reports: the plain-language summary."""

from .summary import render_summary

__all__ = ["render_summary"]
