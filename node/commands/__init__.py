"""One module per `godown` verb: each parses with click, calls into `node/`, prints."""
