import pytest

from mfu_tui.config import Paths


@pytest.fixture
def paths(tmp_path) -> Paths:
    """A user's mfu-chat directories, all under tmp."""
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")


@pytest.fixture
def write_config(paths):
    def write(text: str):
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        paths.config_file.write_text(text)
        return paths.config_file

    return write
