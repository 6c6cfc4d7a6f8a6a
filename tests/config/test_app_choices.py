"""The settings only the app knows (theme, keys): checked alike by `mfu-chat` and `config show`,
and a choice made in the app kept in the config file."""

import pytest

from mfu_tui.config import ConfigError, load_settings
from mfu_tui.config.app_choices import check_app_choices
from mfu_tui.config.edit import remember_choice, save_setting
from mfu_tui.tui import ChatApp
from mfu_tui.tui.keys import REMAP_EXAMPLE, keymap_problem


def test_the_default_keys_and_the_help_screens_example_are_accepted(paths, write_config):
    assert keymap_problem(ChatApp, {}) is None
    write_config(REMAP_EXAMPLE + "\n")  # what F1 shows, as the user would copy it
    settings = load_settings({}, {}, paths)
    check_app_choices(settings)
    assert settings.app.keymap == {"app.new_chat": "ctrl+t"}


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ('"app.new_chat" = "control+tee"', """"app.new_chat" = "control+tee": 'control+tee' is not a key name"""),
        ('"app.new_chat" = "ctrl+t,ctlr+y"', "'ctlr+y' is not a key name"),
        ('"app.export" = "ctrl+q"', """'keys' "app.export" = "ctrl+q": ctrl+q is already app.quit's key"""),
        ('"conversation.copy" = "e"', "e is already conversation.edit's key"),
        ('"composer.send" = "enter,ctrl+s"', "ctrl+s is already app.export's key"),
        ('"app.new_chat" = "ctrl+p"', "ctrl+p opens the command palette in every screen"),
        ('"app.stop" = "x"', "'keys' has no binding 'app.stop'"),
    ],
)
def test_a_bad_key_name_or_a_key_taken_twice_is_one_line_naming_it_and_the_file(paths, write_config, keys, problem):
    config = write_config(f"[keys]\n{keys}\n")
    with pytest.raises(ConfigError) as raised:
        check_app_choices(load_settings({}, {}, paths))
    line = str(raised.value)
    assert line.startswith(f"{config}: ") and "\n" not in line
    assert problem in line


@pytest.mark.parametrize(
    "keys",
    ['"app.cancel" = "escape,ctrl+g"', '"app.new_chat" = "alt+n"', '"app.delete_chat" = "f8,shift+delete"'],
)
def test_free_keys_and_the_overlaps_the_app_means_are_accepted(paths, write_config, keys):
    write_config(f"[keys]\n{keys}\n")
    check_app_choices(load_settings({}, {}, paths))


USER_FILE = """\
# my settings
server = "wss://chat.example/ws"   # the university's
theme = "nord"  # was gruvbox

[keys]
# mine
"app.cancel" = "escape,ctrl+g"
"""


def test_a_theme_is_saved_in_place_keeping_every_other_line(paths, write_config):
    config = write_config(USER_FILE)
    save_setting(config, "theme", "dracula")
    assert config.read_text() == USER_FILE.replace('theme = "nord"  # was gruvbox', 'theme = "dracula"')
    assert load_settings({}, {}, paths).app.theme == "dracula"


def test_a_theme_is_added_before_the_first_table_or_in_a_new_private_file(paths, write_config):
    config = write_config('server = "wss://chat.example/ws"\n[keys]\n"app.cancel" = "escape"\n')
    save_setting(config, "theme", "nord")
    assert config.read_text() == 'server = "wss://chat.example/ws"\ntheme = "nord"\n[keys]\n"app.cancel" = "escape"\n'
    config.unlink()
    save_setting(config, "theme", "nord")
    assert config.read_text() == 'theme = "nord"\n'
    assert config.stat().st_mode & 0o777 == 0o600


def test_a_file_it_cannot_follow_is_left_alone(paths, write_config):
    text = 'theme = """\nnord"""\n'
    config = write_config(text)
    with pytest.raises(ConfigError, match="cannot change 'theme' without changing more"):
        save_setting(config, "theme", "dracula")
    assert config.read_text() == text


def test_saving_says_when_the_environment_overrides_the_file(paths, write_config):
    write_config('theme = "nord"\n')
    settings = load_settings({}, {"MFU_THEME": "gruvbox"}, paths)
    said = remember_choice(settings, "theme", "dracula")
    assert said == f"Saved in {paths.config_file}, but MFU_THEME overrides it at the next start."
    assert load_settings({}, {}, paths).app.theme == "dracula"
