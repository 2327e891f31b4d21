from __future__ import annotations

from picloud.cli import main

main()
