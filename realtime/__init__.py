"""The realtime process: Socket.IO connections fed by domain events from RabbitMQ.

Deliberately empty of imports: `python -m realtime` imports this package before
`__main__` gets to monkey-patch, so nothing here may touch sockets or threads.
"""
