"""The wiring of godown, in rooms kept apart by who uses them:

- `server/`   the node that runs (`godown node start`): core, ledger, mempool, the solo
              and PBFT engines (`server/pbft/`), RPC, events, metrics, config, logs;
- `client/`   what a bank or a gateway vendor imports: the RPC client, transaction
              signing and body builders, sealing and opening device reports — no
              server, LevelDB or libp2p;
- `gateway/`  the device gateway, built on the client library;
- `tools/`    operator and auditor tools: testnet, launcher, demo, audit;
- `load/`     the load generator and workload of `godown bench` and `bench/`;
- `commands/` one module per `godown` verb (click), thin.

`tests/layout/` holds the import directions between them.
"""
