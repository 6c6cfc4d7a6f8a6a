"""Reading a file to attach: images by their first bytes, text only if it is UTF-8, clear words otherwise."""

import os

import pytest

from mfu_tui.client.attachments import AttachmentError, read_attachment

PNG = b"\x89PNG\r\n\x1a\n rest"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0 jfif", "image/jpeg"),
        (b"GIF89a...", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        ("naïve notes\n".encode(), "text/plain"),
        (b"", "text/plain"),
    ],
)
def test_a_file_is_an_image_by_its_first_bytes_or_else_text(tmp_path, data, kind):
    path = tmp_path / "file.dat"
    path.write_bytes(data)
    attached = read_attachment(path)
    assert (attached.name, attached.media_type, attached.data, attached.size) == ("file.dat", kind, data, len(data))


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("scan.bmp", b"BM\x00\x01", "scan.bmp: the models cannot take this image type; attach png, jpeg, gif, webp"),
        ("a.out", b"\x7fELF\x00\x00", "a.out is a binary file: attach text (UTF-8) or an image (png, jpeg, gif, webp)"),
        ("latin.txt", "café".encode("latin-1"), "latin.txt is not UTF-8 text"),
    ],
)
def test_a_file_a_model_cannot_take_is_refused_in_words(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AttachmentError, match="^" + words.replace("(", r"\(").replace(")", r"\)")):
        read_attachment(path)


def test_a_missing_file_a_directory_and_a_large_file_are_refused_in_words(tmp_path):
    with pytest.raises(AttachmentError, match="^no such file: .*nothing.txt$"):
        read_attachment(tmp_path / "nothing.txt")
    with pytest.raises(AttachmentError, match="is a directory: attach a file$"):
        read_attachment(tmp_path)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(AttachmentError, match=r"big.txt is 2.0 KiB: a message may carry 1.0 KiB of files$"):
        read_attachment(big, max_bytes=1024)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused_in_words(tmp_path):
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    with pytest.raises(AttachmentError, match="^cannot read .*locked.txt: permission denied$"):
        read_attachment(locked)
