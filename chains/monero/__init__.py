"""The Monero family: a view-only wallet in `monero-wallet-rpc` beside `monerod`
(`kind = "monero"`). `family` holds the configuration model and the builder (imported by
the registry); `adapter` the follower, imported only when followers are built."""
