"""The `godown` command. Thin: parses arguments, calls into `node/`, prints."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """godown: a permissioned consortium blockchain for warehouse-receipt financing."""


if __name__ == "__main__":
    main()
