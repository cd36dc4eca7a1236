"""`python -m services.mass_messaging`: the mass-messaging service process (RPC, outbox relay, sweeper).

Its Celery workers run apart: `python -m services.mass_messaging.worker [concurrency]`.
"""

from services.mass_messaging import DEFINITION
from shared.service import main

main(DEFINITION)
