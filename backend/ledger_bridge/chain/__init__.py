"""Access to the chain: deployment, contracts, signers, errors and the transaction worker."""
