"""`python -m services.conversations`: the conversations service process."""

from services.conversations import DEFINITION
from shared.service import main

main(DEFINITION)
