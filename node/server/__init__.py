"""The node that runs: everything `godown node start` needs, and nothing of the
operator tools, the load generator or the client library."""
