"""Trading data beyond files: the trades ledger (tolerant read, exact repair), exchange clients,
replay of fills, reconciliation of positions with balances."""
