"""The app's widgets, one module per area of the screen."""

from mfu_tui.tui.widgets.chat_list import ChatList
from mfu_tui.tui.widgets.composer import Composer
from mfu_tui.tui.widgets.conversation import Conversation
from mfu_tui.tui.widgets.header import AppHeader
from mfu_tui.tui.widgets.keys_footer import KeysFooter
from mfu_tui.tui.widgets.message_view import MessageView
from mfu_tui.tui.widgets.status_dot import StatusDot

__all__ = ["AppHeader", "ChatList", "Composer", "Conversation", "KeysFooter", "MessageView", "StatusDot"]
