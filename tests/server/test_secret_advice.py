"""What `mfu-chat serve` and `mfu-chat token` advise when the token secret is missing or short: advice that works."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``mfu-chat ARGS`` with ``env`` as its only MFU_JWT_* settings."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("MFU_JWT_")}
    return subprocess.run(
        [sys.executable, "-m", "mfu_tui", *args], capture_output=True, text=True, env={**base, **env}, timeout=60
    )


def test_a_short_secret_is_refused_with_a_command_debian_has():
    done = run_cli("serve", "--port", "0", env={"MFU_JWT_SECRET": "too-short"})
    assert done.returncode == 2
    advice = done.stderr.split("generate one with: ", 1)[1].strip()
    # Debian 12 has no `python`: the advice runs as printed.
    generated = subprocess.run(["sh", "-c", advice], capture_output=True, text=True, check=True).stdout.strip()
    assert advice.startswith("python3 -c ") and len(generated) >= 32


def test_token_without_a_secret_does_not_suggest_an_identity_provider():
    for env in ({}, {"MFU_JWT_JWKS_URL": "https://idp.example.edu/jwks.json"}):
        done = run_cli("token", "--user", "bob", env=env)
        assert (done.returncode, done.stderr) == (
            2,
            "mfu-chat token: MFU_JWT_SECRET is not set: set it, or give --key-id with a key of MFU_JWT_KEYS_FILE\n",
        )
