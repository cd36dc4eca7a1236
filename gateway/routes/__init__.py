"""The gateway's routes, one blueprint per area; `gateway.app` registers them all."""
