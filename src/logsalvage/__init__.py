"""logsalvage: read, salvage, merge and assess the logs of a compromised web and database server."""

__version__ = "0.1.0"
