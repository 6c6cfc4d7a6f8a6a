"""`mfu-chat import`: conversations kept elsewhere (a ChatGPT export) brought in as chats, once.

``chatgpt`` reads the export, ``progress`` shows how far it got, ``command``
sends it through the server the user is configured for. Like ``cli`` and
``config``, this package may use every layer.
"""
