"""User configuration of `mfu-chat`: where files live, the settings in
effect and where each came from, and the stored login token.

Reading the configuration must stay cheap: it runs before the app starts,
so nothing here imports Textual or the server. The settings are kept in the
types that use them (the client's ``ClientSettings``, the app's
``AppChoices``), whose modules do not import Textual either.
"""

from mfu_tui.config.credentials import Credentials
from mfu_tui.config.paths import Paths
from mfu_tui.config.settings import SETTINGS, ConfigError, Settings, load_settings

__all__ = ["SETTINGS", "ConfigError", "Credentials", "Paths", "Settings", "load_settings"]
