"""How often the client checks its connection and how long it waits: each default written once.

The client's constructor, the app's settings and the config file's
``heartbeat_*`` settings all start from these.
"""

#: Seconds between the client's JSON pings (one also measures the round trip the dot shows).
PING_INTERVAL = 25.0

#: Seconds to wait for a ping's ``pong`` before the connection is dropped and made again.
PING_TIMEOUT = 10.0

#: Seconds a request (``list_chats``...) waits for its answer.
REQUEST_TIMEOUT = 15.0
