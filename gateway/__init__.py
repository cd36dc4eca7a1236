"""The gateway: the public HTTP API under /api/v1, token checks, and the web client's files."""
