"""Fault injection: real broker, database and processes hurt under a steady load."""
