"""The shared vocabulary of godown: canonical encoding, hashes, keys, envelopes,
transactions, blocks, certificates and error codes. Imports no other package of ours."""
