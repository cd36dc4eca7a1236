"""Common code for every process: configuration, errors, events, bus, RPC, outbox, database, tokens."""
