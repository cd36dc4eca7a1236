"""`python -m realtime`: serve Socket.IO until SIGTERM or SIGINT, in the async mode REALTIME_ASYNC_MODE names.

`eventlet` (the default) monkey-patches the process as its module is imported, so the mode is read
from the environment before anything else is imported; `aiohttp` runs python-socketio's asyncio
server and patches nothing.
"""

import os
import sys

if __name__ == "__main__":
    if os.environ.get("REALTIME_ASYNC_MODE", "eventlet") == "aiohttp":
        from realtime.serve_aiohttp import main
    else:
        from realtime.serve_eventlet import main  # refuses any other mode, after patching
    sys.exit(main())
