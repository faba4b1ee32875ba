"""The `godown` command. Thin: one group, one module per verb in `node/commands/`
(as CometBFT keeps `cmd/cometbft/commands/`); those parse, call into `node/`, print.

Every error godown raises on purpose carries a stable code; it becomes one line
`error [code]: message` on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import click

from node.commands.audit import audit
from node.commands.bench import bench
from node.commands.ceremony import card, genesis
from node.commands.demo import demo
from node.commands.gateway import decrypt, gateway
from node.commands.gov import gov, rotate_key
from node.commands.keys import keygen
from node.commands.node import node
from node.commands.query import query, status, tx_cmd
from node.commands.simulate import simulate
from node.commands.snapshot import snapshot
from node.commands.testnet import testnet


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """godown: a permissioned consortium blockchain for warehouse-receipt financing."""


for command in (
    keygen,
    card,
    genesis,
    gov,
    rotate_key,
    testnet,
    node,
    status,
    query,
    tx_cmd,
    gateway,
    decrypt,
    audit,
    snapshot,
    demo,
    bench,
    simulate,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
