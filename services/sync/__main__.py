"""`python -m services.sync`: the sync service process (change logger and catch-up RPC)."""

from services.sync import DEFINITION
from shared.service import main

main(DEFINITION)
