"""`python -m services.moderation`: the moderation service process."""

from services.moderation import DEFINITION
from shared.service import main

main(DEFINITION)
