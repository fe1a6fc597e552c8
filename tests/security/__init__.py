"""Sandbox security suite: hostile handlers that must be refused (a package so tests can import .helpers)."""
