"""`python -m mfu_tui` runs the same command as `mfu-chat`."""

from mfu_tui.cli import main

raise SystemExit(main())
