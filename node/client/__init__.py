"""The client library: what a bank's service or a gateway vendor imports to talk
to a node — the RPC client, signing any transaction, sealing and opening device
reports. It imports none of the server, LevelDB or libp2p."""
