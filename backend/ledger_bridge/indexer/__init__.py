"""The event indexer: contract events copied from the chain into the database."""
