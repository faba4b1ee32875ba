"""The PBFT engine of a consortium node: `driver.ReplicaDriver` drives the pure
`consensus.Replica`; the frames it exchanges, the proposals it holds, the client
transactions it forwards, the blocks it fetches and serves, and its write-ahead
log each have a module of their own."""

from node.server.pbft.driver import ReplicaDriver

__all__ = ["ReplicaDriver"]
