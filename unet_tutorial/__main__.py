"""``python -m unet_tutorial ...``: the command line, in cli.py."""

from unet_tutorial.cli import main

raise SystemExit(main())
