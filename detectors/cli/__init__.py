"""The `detector` command: its subcommands, and text made safe for a terminal."""
