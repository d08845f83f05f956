"""Turning bytes into records: format definitions, the line engine, timestamps and years."""
