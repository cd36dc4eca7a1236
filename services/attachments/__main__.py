"""`python -m services.attachments`: the attachments service process."""

from services.attachments import DEFINITION
from shared.service import main

main(DEFINITION)
